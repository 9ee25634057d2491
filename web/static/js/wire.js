// Reference decoder for the stream's binary snapshot frame (docs/STREAM.md, protocol 1), and
// for the multi-job stream's bundle of such frames (/api/streams).
//
// Frame: 4 bytes N (uint32 little-endian), N bytes of UTF-8 JSON header (padded so that
// 4 + N is a multiple of 8), then the arrays' bytes; each array's `offset` counts from byte
// 4 + N and is a multiple of 8, so typed arrays view the buffer without copying.
// Bundle: uint32 n, n x uint32 frame lengths, zero bytes to a multiple of 8, then the frames,
// each starting at a multiple of 8 from the bundle's start (so its arrays stay aligned too).
// This module only decodes; it never talks to the server.

const TYPED = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array };

/**
 * Decode one binary frame.
 * @param {ArrayBuffer} buffer the websocket message (binaryType = "arraybuffer")
 * @returns {{header: object, arrays: Object<string, {data: TypedArray, shape: number[], meta: object}>}}
 */
export function decodeFrame(buffer) {
  needBuffer(buffer, "decodeFrame");
  return frameAt(buffer, 0, buffer.byteLength);
}

/**
 * Decode a bundle of frames (the multi-job stream's binary message): its frames in order, each
 * as decodeFrame gives it; the typed arrays view the bundle's buffer without copying.
 * @param {ArrayBuffer} buffer the websocket message (binaryType = "arraybuffer")
 * @returns {Array<{header: object, arrays: object}>}
 */
export function decodeBundle(buffer) {
  needBuffer(buffer, "decodeBundle");
  if (buffer.byteLength < 4) throw new Error("bundle shorter than its 4-byte frame count");
  const view = new DataView(buffer);
  const n = view.getUint32(0, true);
  const table = 4 + 4 * n;
  if (table > buffer.byteLength) {
    throw new Error(`bundle of ${n} frames is shorter than its length table (${buffer.byteLength} bytes)`);
  }
  const frames = [];
  let start = align8(table);
  for (let i = 0; i < n; i++) {
    const length = view.getUint32(4 + 4 * i, true);
    if (start + length > buffer.byteLength) {
      throw new Error(`frame ${i} (${length} bytes at ${start}) runs past the bundle (${buffer.byteLength} bytes)`);
    }
    frames.push(frameAt(buffer, start, length));
    start = align8(start + length);
  }
  return frames;
}

function align8(n) { return (n + 7) & ~7; }

function needBuffer(buffer, who) {
  if (!(buffer instanceof ArrayBuffer)) {
    throw new Error(`${who} needs an ArrayBuffer; set socket.binaryType = 'arraybuffer'`);
  }
}

/** The frame of `length` bytes at byte `start` of `buffer` (start a multiple of 8). */
function frameAt(buffer, start, length) {
  if (length < 4) throw new Error("frame shorter than its 4-byte header length");
  const end = start + length;
  const n = new DataView(buffer, start, 4).getUint32(0, true);
  if (4 + n > length) {
    throw new Error(`header length ${n} runs past the frame (${length} bytes)`);
  }
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, start + 4, n)));
  const body = start + 4 + n;
  const arrays = {};
  for (const meta of header.arrays || []) {
    const Typed = TYPED[meta.dtype];
    if (!Typed) throw new Error(`array ${meta.name}: unknown dtype ${meta.dtype}`);
    const count = meta.shape.reduce((a, b) => a * b, 1);
    if (body + meta.offset + count * Typed.BYTES_PER_ELEMENT > end) {
      throw new Error(`array ${meta.name} runs past the end of the frame`);
    }
    arrays[meta.name] = { data: new Typed(buffer, body + meta.offset, count), shape: meta.shape, meta };
  }
  return { header, arrays };
}

/**
 * Float values of a decoded array: uint8 arrays are dequantized with their per-slice ranges
 * (value = min[i] + (max[i] - min[i]) * q / 255, i the index on the first axis).
 * @returns {Float32Array}
 */
export function dequantize(array) {
  const { data, shape, meta } = array;
  if (meta.dtype !== "uint8" || !meta.min) return Float32Array.from(data);
  const slice = data.length / (shape[0] || 1);
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const k = Math.floor(i / slice);
    out[i] = meta.min[k] + (meta.max[k] - meta.min[k]) * data[i] / 255;
  }
  return out;
}
