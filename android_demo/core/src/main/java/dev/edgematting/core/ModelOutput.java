package dev.edgematting.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Model output tensor -> alpha at photo size; the Java twin of
 * {@code edgematting.contract.output_to_alpha}: dequantize ({@code (q - zero_point) * scale})
 * when the output is uint8/int8, map {@code output.range} to [0, 1] when it is not [0, 1],
 * then {@code imageops.alpha_to_photo} (bilinear resize to the photo, clip to [0, 1]) or,
 * when asked, {@link GuidedFilter} ({@code imageops.guided_upsample}).
 */
public final class ModelOutput {
    private ModelOutput() {}

    /** A direct buffer in native byte order, sized for the output tensor (for the Interpreter). */
    public static ByteBuffer allocate(ModelMetadata m) {
        return ByteBuffer.allocateDirect(m.outputBytes()).order(ByteOrder.nativeOrder());
    }

    /** The output tensor as floats at model size (h*w), dequantized and range-mapped. */
    public static float[] modelAlpha(ByteBuffer out, ModelMetadata m) {
        float[] a = new float[m.outputHeight * m.outputWidth];
        modelAlphaInto(out, m, a);
        return a;
    }

    /** {@link #modelAlpha} into {@code dst} (h*w floats); absolute reads in {@code out}'s byte order. */
    public static void modelAlphaInto(ByteBuffer out, ModelMetadata m, float[] dst) {
        int n = m.outputHeight * m.outputWidth;
        if (out.capacity() < m.outputBytes()) {
            throw new IllegalArgumentException("output buffer holds " + out.capacity() + " bytes, the model writes " + m.outputBytes());
        }
        ImageOps.checkLength(dst, n, "dst");
        switch (m.outputDType) {
            case FLOAT32:
                for (int i = 0; i < n; i++) dst[i] = out.getFloat(i * 4);
                break;
            case UINT8:
                for (int i = 0; i < n; i++) dst[i] = Quant.dequantize(out.get(i) & 0xFF, m.outputQuantization);
                break;
            case INT8:
                for (int i = 0; i < n; i++) dst[i] = Quant.dequantize(out.get(i), m.outputQuantization);
                break;
            default:
                throw new IllegalStateException(m.outputDType.toString());
        }
        if (m.rangeLow != 0.0f || m.rangeHigh != 1.0f) {
            float span = m.rangeHigh - m.rangeLow;
            for (int i = 0; i < n; i++) dst[i] = (dst[i] - m.rangeLow) / span;
        }
    }

    /** imageops.alpha_to_photo: alpha (h x w) resized to the photo and clipped to [0, 1]. */
    public static float[] alphaToPhoto(float[] alpha, int h, int w, int photoWidth, int photoHeight) {
        float[] r = new float[photoWidth * photoHeight];
        alphaToPhotoInto(alpha, h, w, ImageOps.axisWeights(h, photoHeight), ImageOps.axisWeights(w, photoWidth), r);
        return r;
    }

    /** {@link #alphaToPhoto} into {@code dst}, with weights h -> photo height (ay) and w -> photo width (ax). */
    public static void alphaToPhotoInto(float[] alpha, int h, int w, ImageOps.AxisWeights ay, ImageOps.AxisWeights ax, float[] dst) {
        ImageOps.resizeBilinearInto(alpha, h, w, 1, ay, ax, dst);
        for (int i = 0; i < dst.length; i++) dst[i] = Math.min(Math.max(dst[i], 0.0f), 1.0f);
    }

    /** Output tensor -> alpha in [0, 1] at photo size (photoWidth x photoHeight), row-major. */
    public static float[] toAlpha(ByteBuffer out, ModelMetadata m, int photoWidth, int photoHeight) {
        return alphaToPhoto(modelAlpha(out, m), m.outputHeight, m.outputWidth, photoWidth, photoHeight);
    }

    /**
     * contract.output_to_alpha(raw, meta, photo_hw, guide=photo, guided=filter): the
     * guided-filter upsampling, guided by the photo ({@code argb}, photoWidth x photoHeight).
     */
    public static float[] toAlphaGuided(ByteBuffer out, ModelMetadata m, int[] argb, int photoWidth, int photoHeight, GuidedFilter filter) {
        return filter.upsample(modelAlpha(out, m), m.outputHeight, m.outputWidth, ModelInput.resized(argb, photoWidth, photoHeight, m),
                argb, photoWidth, photoHeight);
    }
}
