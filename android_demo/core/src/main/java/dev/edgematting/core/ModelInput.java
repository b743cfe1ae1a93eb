package dev.edgematting.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Photo (ARGB ints) -> the model's input tensor, as the metadata describes it; the Java twin
 * of {@code edgematting.android.model_input} (built on {@code imageops.to_model_input}).
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

    /**
     * The real (pre-quantization) values of the input tensor, interleaved HxWxC in channel
     * order. For float32 inputs these are exactly the tensor values.
     */
    public static float[] realValues(int[] argb, int width, int height, ModelMetadata m) {
        float[] px = ImageOps.resizeBilinear(ImageOps.argbToRgb(argb, width, height), height, width, 3,
                m.inputHeight, m.inputWidth);
        int n = m.inputHeight * m.inputWidth;
        int ch = m.inputChannels;
        boolean bgr = m.isBgr();
        float alpha = m.normalizationInModel ? 255.0f : 0.0f;
        float[] out = new float[n * ch];
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < 3; c++) {
                int src = bgr ? 2 - c : c;
                float v = px[i * 3 + src];
                out[i * ch + c] = m.normalizationInModel ? v : (v - m.mean[src]) / m.std[src];
            }
            if (ch == 4) out[i * ch + 3] = alpha;
        }
        return out;
    }

    /**
     * Writes the input tensor for {@code argb} (width x height) into {@code dst} from its
     * position 0, in {@code dst}'s byte order, and rewinds it. Returns {@code dst}.
     */
    public static ByteBuffer write(int[] argb, int width, int height, ModelMetadata m, ByteBuffer dst) {
        if (dst.capacity() < m.inputBytes()) {
            throw new IllegalArgumentException("input buffer holds " + dst.capacity() + " bytes, the model needs " + m.inputBytes());
        }
        float[] real = realValues(argb, width, height, m);
        dst.clear();
        switch (m.inputDType) {
            case FLOAT32:
                for (float v : real) dst.putFloat(v);
                break;
            case UINT8:
            case INT8:
                if (m.inputQuantization == null) { // raw uint8 pixels (metadata validation guarantees uint8 here)
                    for (float v : real) dst.put((byte) ImageOps.roundToUint8(v));
                } else {
                    for (float v : real) dst.put((byte) Quant.quantize(v, m.inputQuantization, m.inputDType));
                }
                break;
            default:
                throw new IllegalStateException(m.inputDType.toString());
        }
        dst.rewind();
        return dst;
    }

    /** Convenience: a new little-endian heap buffer holding the input tensor. */
    public static ByteBuffer create(int[] argb, int width, int height, ModelMetadata m) {
        return write(argb, width, height, m, ByteBuffer.allocate(m.inputBytes()).order(ByteOrder.LITTLE_ENDIAN));
    }
}
