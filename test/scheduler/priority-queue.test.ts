import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IndexedHeap } from '../../src/scheduler/priority-queue.js';

interface Item {
  heapIndex: number;
  value: number;
  id: number;
}

describe('IndexedHeap', () => {
  test('pops in order through random pushes, removals and re-keying', () => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
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
        const item = [...live][Math.floor(random() * live.size)] as Item;
        heap.remove(item);
        heap.remove(item); // idempotent
        live.delete(item);
        assert.equal(item.heapIndex, -1);
        assert.equal(heap.has(item), false);
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
