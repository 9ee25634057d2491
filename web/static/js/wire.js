// Reference decoder for the stream's binary snapshot frame (docs/STREAM.md, protocol 1).
//
// Frame: 4 bytes N (uint32 little-endian), N bytes of UTF-8 JSON header (padded so that
// 4 + N is a multiple of 8), then the arrays' bytes; each array's `offset` counts from byte
// 4 + N and is a multiple of 8, so typed arrays view the buffer without copying.
// This module only decodes; it never talks to the server.

const TYPED = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array };

/**
 * Decode one binary frame.
 * @param {ArrayBuffer} buffer the websocket message (binaryType = "arraybuffer")
 * @returns {{header: object, arrays: Object<string, {data: TypedArray, shape: number[], meta: object}>}}
 */
export function decodeFrame(buffer) {
  if (!(buffer instanceof ArrayBuffer)) {
    throw new Error("decodeFrame needs an ArrayBuffer; set socket.binaryType = 'arraybuffer'");
  }
  if (buffer.byteLength < 4) throw new Error("frame shorter than its 4-byte header length");
  const n = new DataView(buffer).getUint32(0, true);
  if (4 + n > buffer.byteLength) {
    throw new Error(`header length ${n} runs past the frame (${buffer.byteLength} bytes)`);
  }
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, n)));
  const body = 4 + n;
  const arrays = {};
  for (const meta of header.arrays || []) {
    const Typed = TYPED[meta.dtype];
    if (!Typed) throw new Error(`array ${meta.name}: unknown dtype ${meta.dtype}`);
    const count = meta.shape.reduce((a, b) => a * b, 1);
    if (body + meta.offset + count * Typed.BYTES_PER_ELEMENT > buffer.byteLength) {
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
