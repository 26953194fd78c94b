'use strict';

// A fixed-size ring buffer that overwrites the oldest entry when full.
class RingBuffer {
  constructor(capacity) {
    if (!Number.isInteger(capacity) || capacity <= 0) {
      throw new RangeError('capacity must be a positive integer');
    }
    this.capacity = capacity;
    this.items = new Array(capacity);
    this.start = 0;
    this.length = 0;
  }

  push(item) {
    const index = (this.start + this.length) % this.capacity;
    this.items[index] = item;
    if (this.length < this.capacity) {
      this.length += 1;
    } else {
      this.start = (this.start + 1) % this.capacity;
    }
  }

  shift() {
    if (this.length === 0) {
      return undefined;
    }
    const item = this.items[this.start];
    this.items[this.start] = undefined;
    this.start = (this.start + 1) % this.capacity;
    this.length -= 1;
    return item;
  }

  peek() {
    return this.length === 0 ? undefined : this.items[this.start];
  }

  toArray() {
    const result = [];
    for (let i = 0; i < this.length; i += 1) {
      result.push(this.items[(this.start + i) % this.capacity]);
    }
    return result;
  }

  clear() {
    this.items.fill(undefined);
    this.start = 0;
    this.length = 0;
  }
}

function movingAverage(values, windowSize) {
  const buffer = new RingBuffer(windowSize);
  const averages = [];
  let sum = 0;
  for (const value of values) {
    if (buffer.length === windowSize) {
      sum -= buffer.peek();
    }
    buffer.push(value);
    sum += value;
    averages.push(sum / buffer.length);
  }
  return averages;
}

function chunk(array, size) {
  const chunks = [];
  for (let i = 0; i < array.length; i += size) {
    chunks.push(array.slice(i, i + size));
  }
  return chunks;
}

function unique(values) {
  const seen = new Set();
  const result = [];
  for (const value of values) {
    if (!seen.has(value)) {
      seen.add(value);
      result.push(value);
    }
  }
  return result;
}

module.exports = { RingBuffer, movingAverage, chunk, unique };
