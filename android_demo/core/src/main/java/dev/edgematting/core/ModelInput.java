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
 *   <li>a prior-frame model's 4th channel ("RGB+prior", {@link ModelMetadata#takesPrior}) is
 *       the previous frame's alpha at model size (h*w floats; null: zeros, a first frame or
 *       a single photo), clipped to [0, 1], not normalized by mean/std; on the pixel scale,
 *       {@code floor(prior * 255 + 0.5)}, when the normalization is in the model
 *       ({@link ModelMetadata#priorInPixels}); then quantized like the colours
 *       ({@code contract.encode_pixels(..., prior=)}).</li>
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

    /**
     * The real value of channel {@code c} (0..channels-1, in the model's channel order) of model
     * pixel {@code i}; {@code prior}: a prior-frame model's previous alpha (null: zeros).
     */
    private static float real(float[] px, float[] prior, int i, int c, ModelMetadata m) {
        if (c == 3) {
            if (m.takesPrior) return prior == null ? 0.0f : priorValue(prior[i], m);
            return m.normalizationInModel ? 255.0f : 0.0f;
        }
        int src = m.isBgr() ? 2 - c : c;
        float v = px[i * 3 + src];
        return m.normalizationInModel ? v : (v - m.mean[src]) / m.std[src];
    }

    /**
     * contract._prior_channel for one value: a previous alpha clipped to [0, 1] (NaN stays
     * NaN, as numpy's clip), times 255 and rounded ({@code floor(x + 0.5)}, clipped to 0..255)
     * when {@link ModelMetadata#priorInPixels}.
     */
    public static float priorValue(float prior, ModelMetadata m) {
        float p = Math.min(Math.max(prior, 0.0f), 1.0f);
        return m.priorInPixels() ? (float) ImageOps.roundToUint8(p * 255.0f) : p;
    }

    /**
     * The real (pre-quantization) values of the input tensor, interleaved HxWxC in channel
     * order. For float32 inputs these are exactly the tensor values.
     */
    public static float[] realValues(int[] argb, int width, int height, ModelMetadata m) {
        return realValues(argb, width, height, null, m);
    }

    /** {@link #realValues} of a prior-frame model with this previous alpha (h*w at model size; null: zeros). */
    public static float[] realValues(int[] argb, int width, int height, float[] prior, ModelMetadata m) {
        float[] px = resized(argb, width, height, m);
        int n = m.inputHeight * m.inputWidth;
        checkPrior(prior, m);
        int ch = m.inputChannels;
        float[] out = new float[n * ch];
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < ch; c++) out[i * ch + c] = real(px, prior, i, c, m);
        }
        return out;
    }

    /** A prior is model-size, h*w floats, and only for a prior-frame model (an RGBA model has no such channel). */
    private static void checkPrior(float[] prior, ModelMetadata m) {
        if (prior == null) return;
        if (!m.takesPrior) {
            throw new IllegalArgumentException("a previous alpha was given, but " + m.modelName + " takes "
                    + m.channelOrder + ", not " + ModelMetadata.PRIOR_ORDER);
        }
        ImageOps.checkLength(prior, m.inputHeight * m.inputWidth, "prior (the previous frame's alpha at model size)");
    }

    /**
     * Encodes model-size RGB pixels ({@link #resized}) into the input tensor in {@code dst}
     * from index 0, in {@code dst}'s byte order (absolute puts), and rewinds it. A
     * prior-frame model gets zeros as its prior (a first frame, a single photo).
     */
    public static ByteBuffer encode(float[] px, ModelMetadata m, ByteBuffer dst) {
        return encode(px, null, m, dst);
    }

    /**
     * {@link #encode} with a prior-frame model's previous alpha ({@code prior}: h*w floats at
     * model size, the model's last output as {@link ModelOutput#modelAlpha} gives it; null:
     * zeros). A prior for a model without the prior channel is an IllegalArgumentException.
     */
    public static ByteBuffer encode(float[] px, float[] prior, ModelMetadata m, ByteBuffer dst) {
        int n = m.inputHeight * m.inputWidth;
        ImageOps.checkLength(px, n * 3, "resized pixels");
        checkPrior(prior, m);
        if (dst.capacity() < m.inputBytes()) {
            throw new IllegalArgumentException("input buffer holds " + dst.capacity() + " bytes, the model needs " + m.inputBytes());
        }
        int ch = m.inputChannels;
        switch (m.inputDType) {
            case FLOAT32:
                for (int i = 0, o = 0; i < n; i++) {
                    for (int c = 0; c < ch; c++, o += 4) dst.putFloat(o, real(px, prior, i, c, m));
                }
                break;
            case UINT8:
            case INT8:
                for (int i = 0, o = 0; i < n; i++) {
                    for (int c = 0; c < ch; c++, o++) {
                        float v = real(px, prior, i, c, m);
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
        return write(argb, width, height, null, m, dst);
    }

    /** {@link #write} with a prior-frame model's previous alpha (h*w at model size; null: zeros). */
    public static ByteBuffer write(int[] argb, int width, int height, float[] prior, ModelMetadata m, ByteBuffer dst) {
        if (dst.capacity() < m.inputBytes()) {
            throw new IllegalArgumentException("input buffer holds " + dst.capacity() + " bytes, the model needs " + m.inputBytes());
        }
        return encode(resized(argb, width, height, m), prior, m, dst);
    }

    /** Convenience: a new little-endian heap buffer holding the input tensor. */
    public static ByteBuffer create(int[] argb, int width, int height, ModelMetadata m) {
        return create(argb, width, height, null, m);
    }

    /**
     * contract.model_input(photo, meta, prior=): a new little-endian heap buffer holding the
     * input tensor, a prior-frame model's 4th channel from {@code prior} (null: zeros).
     */
    public static ByteBuffer create(int[] argb, int width, int height, float[] prior, ModelMetadata m) {
        return write(argb, width, height, prior, m, ByteBuffer.allocate(m.inputBytes()).order(ByteOrder.LITTLE_ENDIAN));
    }
}
