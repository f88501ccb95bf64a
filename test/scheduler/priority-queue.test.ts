import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IndexedHeap, RunQueue } from '../../src/scheduler/priority-queue.js';

interface Item {
  heapIndex: number;
  value: number;
  id: number;
}

/** A seeded generator in [0, 1), so a failure replays. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

/** Removes a random live item from `queue` twice (the second is a no-op) and checks it is out. */
function removeOne(queue: { remove(item: Item): void; has(item: Item): boolean }, live: Set<Item>, random: () => number): void {
  const item = [...live][Math.floor(random() * live.size)] as Item;
  queue.remove(item);
  queue.remove(item); // idempotent
  live.delete(item);
  assert.equal(item.heapIndex, -1);
  assert.equal(queue.has(item), false);
}

describe('IndexedHeap', () => {
  test('pops in order through random pushes, removals and re-keying', () => {
    const random = seeded(7);
    const heap = new IndexedHeap<Item>((a, b) => a.value < b.value || (a.value === b.value && a.id < b.id));
    const live = new Set<Item>();
    let id = 0;
    for (let step = 0; step < 5000; step++) {
      const x = random();
      if (x < 0.5) {
        const item = { heapIndex: -1, value: Math.floor(random() * 100), id: id++ };
        heap.push(item);
        live.add(item);
      } else if (x < 0.65 && live.size > 0) {
        removeOne(heap, live, random);
      } else if (x < 0.8 && live.size > 0) {
        const item = [...live][Math.floor(random() * live.size)] as Item;
        item.value = Math.floor(random() * 100);
        heap.update(item);
      } else {
        const expected = [...live].sort((a, b) => a.value - b.value || a.id - b.id)[0];
        const got = heap.pop();
        assert.equal(got, expected);
        if (got !== undefined) live.delete(got);
      }
      assert.equal(heap.size, live.size);
    }
    const rest: Item[] = [];
    for (let item = heap.pop(); item !== undefined; item = heap.pop()) rest.push(item);
    assert.deepEqual(
      rest,
      [...live].sort((a, b) => a.value - b.value || a.id - b.id),
    );
  });
});

describe('RunQueue', () => {
  const less = (a: Item, b: Item): boolean => a.value < b.value || (a.value === b.value && a.id < b.id);
  const sorted = (items: Iterable<Item>): Item[] => [...items].sort((a, b) => a.value - b.value || a.id - b.id);

  test('pops in order through mostly ordered pushes, stray ones, removals and long runs', () => {
    const random = seeded(11);
    const queue = new RunQueue<Item>(less);
    const live = new Set<Item>();
    let id = 0;
    let rising = 0;
    for (let step = 0; step < 20_000; step++) {
      const x = random();
      if (x < 0.55) {
        // Mostly rising values (as a graph's roots arrive), now and then one out of order.
        const value = random() < 0.85 ? (rising += Math.floor(random() * 3)) : Math.floor(random() * rising);
        const item = { heapIndex: -1, value, id: id++ };
        queue.push(item);
        live.add(item);
        assert.equal(queue.has(item), true);
      } else if (x < 0.7 && live.size > 0) {
        removeOne(queue, live, random);
      } else {
        const expected = sorted(live)[0];
        assert.equal(queue.peek(), expected);
        const got = queue.pop();
        assert.equal(got, expected);
        if (got !== undefined) {
          live.delete(got);
          assert.equal(got.heapIndex, -1);
        }
      }
      assert.equal(queue.size, live.size);
    }
    assert.deepEqual(new Set(queue.values()), live);
    const rest: Item[] = [];
    for (let item = queue.pop(); item !== undefined; item = queue.pop()) rest.push(item);
    assert.deepEqual(rest, sorted(live));
    assert.equal(queue.size, 0);
  });

  test('an item popped and pushed again is queued again', () => {
    const queue = new RunQueue<Item>(less);
    const a = { heapIndex: -1, value: 1, id: 0 };
    const b = { heapIndex: -1, value: 2, id: 1 };
    queue.push(a);
    queue.push(b);
    assert.equal(queue.pop(), a);
    queue.push(a);
    assert.equal(queue.has(a), true);
    assert.deepEqual([queue.pop(), queue.pop(), queue.pop()], [a, b, undefined]);
  });
});
