package dev.edgematting.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Model output tensor -> alpha at photo size; the Java twin of
 * {@code edgematting.android.output_to_alpha}: dequantize ({@code (q - zero_point) * scale})
 * when the output is uint8/int8, map {@code output.range} to [0, 1] when it is not [0, 1],
 * then {@code imageops.alpha_to_photo} (bilinear resize to the photo, clip to [0, 1]).
 */
public final class ModelOutput {
    private ModelOutput() {}

    /** A direct buffer in native byte order, sized for the output tensor (for the Interpreter). */
    public static ByteBuffer allocate(ModelMetadata m) {
        return ByteBuffer.allocateDirect(m.outputBytes()).order(ByteOrder.nativeOrder());
    }

    /** The output tensor as floats at model size (h*w), dequantized and range-mapped. */
    public static float[] modelAlpha(ByteBuffer out, ModelMetadata m) {
        int n = m.outputHeight * m.outputWidth;
        if (out.capacity() < m.outputBytes()) {
            throw new IllegalArgumentException("output buffer holds " + out.capacity() + " bytes, the model writes " + m.outputBytes());
        }
        float[] a = new float[n];
        switch (m.outputDType) {
            case FLOAT32:
                for (int i = 0; i < n; i++) a[i] = out.getFloat(i * 4);
                break;
            case UINT8:
                for (int i = 0; i < n; i++) a[i] = Quant.dequantize(out.get(i) & 0xFF, m.outputQuantization);
                break;
            case INT8:
                for (int i = 0; i < n; i++) a[i] = Quant.dequantize(out.get(i), m.outputQuantization);
                break;
            default:
                throw new IllegalStateException(m.outputDType.toString());
        }
        if (m.rangeLow != 0.0f || m.rangeHigh != 1.0f) {
            float span = m.rangeHigh - m.rangeLow;
            for (int i = 0; i < n; i++) a[i] = (a[i] - m.rangeLow) / span;
        }
        return a;
    }

    /** imageops.alpha_to_photo: alpha (h x w) resized to the photo and clipped to [0, 1]. */
    public static float[] alphaToPhoto(float[] alpha, int h, int w, int photoWidth, int photoHeight) {
        float[] r = ImageOps.resizeBilinear(alpha, h, w, 1, photoHeight, photoWidth);
        for (int i = 0; i < r.length; i++) r[i] = Math.min(Math.max(r[i], 0.0f), 1.0f);
        return r;
    }

    /** Output tensor -> alpha in [0, 1] at photo size (photoWidth x photoHeight), row-major. */
    public static float[] toAlpha(ByteBuffer out, ModelMetadata m, int photoWidth, int photoHeight) {
        return alphaToPhoto(modelAlpha(out, m), m.outputHeight, m.outputWidth, photoWidth, photoHeight);
    }
}
