package dev.edgematting.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Photo (ARGB ints) -> the model's input tensor, as the metadata describes it; the Java twin
 * of {@code edgematting.contract.model_input} (bilinear resize, then {@code encode_pixels}).
 *
 * <p>Steps: resize the RGB pixels to the model size (bilinear, half-pixel centres), put the
 * colours in {@code channel_order}, then
 * <ul>
 *   <li>the real value of each channel is {@code (pixel - mean) / std} (mean/std given per
 *       colour in R, G, B order), or the raw pixel when {@code normalization_in_model};</li>
 *   <li>float32: that value; uint8 without quantization (raw pixels): floor(x + 0.5) clipped;
 *       int8/uint8 with quantization: {@code floor(x / scale + 0.5) + zero_point}, clipped;</li>
 *   <li>a 4th channel (RGBA/BGRA) is opaque alpha in the input's units: 255 for raw pixels,
 *       0 for normalized values (as imageops does; models ignore it).</li>
 * </ul>
 */
public final class ModelInput {
    private ModelInput() {}

    /** A direct buffer in native byte order, sized for the input tensor (for the Interpreter). */
    public static ByteBuffer allocate(ModelMetadata m) {
        return ByteBuffer.allocateDirect(m.inputBytes()).order(ByteOrder.nativeOrder());
    }

    /** The photo resized to the model's input size: interleaved float RGB (imageops.resize_bilinear). */
    public static float[] resized(int[] argb, int width, int height, ModelMetadata m) {
        float[] px = new float[m.inputHeight * m.inputWidth * 3];
        ImageOps.resizeArgbToRgbInto(argb, height, width, ImageOps.axisWeights(height, m.inputHeight),
                ImageOps.axisWeights(width, m.inputWidth), px);
        return px;
    }

    /** The real value of channel {@code c} (0..channels-1, in the model's channel order) of model pixel {@code i}. */
    private static float real(float[] px, int i, int c, ModelMetadata m) {
        if (c == 3) return m.normalizationInModel ? 255.0f : 0.0f;
        int src = m.isBgr() ? 2 - c : c;
        float v = px[i * 3 + src];
        return m.normalizationInModel ? v : (v - m.mean[src]) / m.std[src];
    }

    /**
     * The real (pre-quantization) values of the input tensor, interleaved HxWxC in channel
     * order. For float32 inputs these are exactly the tensor values.
     */
    public static float[] realValues(int[] argb, int width, int height, ModelMetadata m) {
        float[] px = resized(argb, width, height, m);
        int n = m.inputHeight * m.inputWidth;
        int ch = m.inputChannels;
        float[] out = new float[n * ch];
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < ch; c++) out[i * ch + c] = real(px, i, c, m);
        }
        return out;
    }

    /**
     * Encodes model-size RGB pixels ({@link #resized}) into the input tensor in {@code dst}
     * from index 0, in {@code dst}'s byte order (absolute puts), and rewinds it.
     */
    public static ByteBuffer encode(float[] px, ModelMetadata m, ByteBuffer dst) {
        int n = m.inputHeight * m.inputWidth;
        ImageOps.checkLength(px, n * 3, "resized pixels");
        if (dst.capacity() < m.inputBytes()) {
            throw new IllegalArgumentException("input buffer holds " + dst.capacity() + " bytes, the model needs " + m.inputBytes());
        }
        int ch = m.inputChannels;
        switch (m.inputDType) {
            case FLOAT32:
                for (int i = 0, o = 0; i < n; i++) {
                    for (int c = 0; c < ch; c++, o += 4) dst.putFloat(o, real(px, i, c, m));
                }
                break;
            case UINT8:
            case INT8:
                for (int i = 0, o = 0; i < n; i++) {
                    for (int c = 0; c < ch; c++, o++) {
                        float v = real(px, i, c, m);
                        // raw uint8 pixels when there is no quantization (metadata validation guarantees uint8 here)
                        int q = m.inputQuantization == null ? ImageOps.roundToUint8(v) : Quant.quantize(v, m.inputQuantization, m.inputDType);
                        dst.put(o, (byte) q);
                    }
                }
                break;
            default:
                throw new IllegalStateException(m.inputDType.toString());
        }
        dst.rewind();
        return dst;
    }

    /**
     * Writes the input tensor for {@code argb} (width x height) into {@code dst} from its
     * position 0, in {@code dst}'s byte order, and rewinds it. Returns {@code dst}.
     */
    public static ByteBuffer write(int[] argb, int width, int height, ModelMetadata m, ByteBuffer dst) {
        if (dst.capacity() < m.inputBytes()) {
            throw new IllegalArgumentException("input buffer holds " + dst.capacity() + " bytes, the model needs " + m.inputBytes());
        }
        return encode(resized(argb, width, height, m), m, dst);
    }

    /** Convenience: a new little-endian heap buffer holding the input tensor. */
    public static ByteBuffer create(int[] argb, int width, int height, ModelMetadata m) {
        return write(argb, width, height, m, ByteBuffer.allocate(m.inputBytes()).order(ByteOrder.LITTLE_ENDIAN));
    }
}
