/**
 * A canvas sized to its box at the screen's pixel density. The box's size comes from a
 * ResizeObserver, so drawing never reads layout (a read after another panel's DOM writes
 * would force a synchronous layout every frame).
 */
export interface CanvasSize {
  /** CSS pixels. */
  readonly cssWidth: number;
  readonly cssHeight: number;
  readonly dpr: number;
  /** Device pixels: the canvas' backing store. */
  readonly width: number;
  readonly height: number;
}

export class CanvasBox {
  readonly canvas: HTMLCanvasElement;
  readonly #minWidth: number;
  readonly #minHeight: number;
  #cssWidth: number;
  #cssHeight: number;

  /** `onResize` runs when the box changes size (schedule a redraw there). */
  constructor(canvas: HTMLCanvasElement, minWidth: number, minHeight: number, onResize: () => void) {
    this.canvas = canvas;
    this.#minWidth = minWidth;
    this.#minHeight = minHeight;
    this.#cssWidth = canvas.clientWidth;
    this.#cssHeight = canvas.clientHeight;
    new ResizeObserver((entries) => {
      const box = entries[entries.length - 1]?.contentRect;
      if (box === undefined || (box.width === this.#cssWidth && box.height === this.#cssHeight)) return;
      this.#cssWidth = box.width;
      this.#cssHeight = box.height;
      onResize();
    }).observe(canvas);
  }

  /** Sizes the backing store to the box (clearing it only when that changes) and returns the size. */
  fit(): CanvasSize {
    const dpr = devicePixelRatio;
    const cssWidth = Math.max(this.#minWidth, this.#cssWidth);
    const cssHeight = Math.max(this.#minHeight, this.#cssHeight);
    const width = Math.round(cssWidth * dpr);
    const height = Math.round(cssHeight * dpr);
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    return { cssWidth, cssHeight, dpr, width, height };
  }
}
