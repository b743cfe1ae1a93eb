package dev.edgematting.core;

/**
 * Affine (de)quantization, the Java twin of {@code edgematting.contract.quantize} /
 * {@code dequantize}: {@code q = clip(floor(x / scale + 0.5) + zero_point)},
 * {@code x = (q - zero_point) * scale}, all in float32.
 */
public final class Quant {
    private Quant() {}

    public static int quantize(float x, ModelMetadata.Quantization q, ModelMetadata.DType dtype) {
        float v = (float) Math.floor(x / q.scale + 0.5f);
        // clip in float before converting, as numpy clips the int64 of the same value
        if (v < (float) (dtype.qmin - q.zeroPoint)) return dtype.qmin;
        if (v > (float) (dtype.qmax - q.zeroPoint)) return dtype.qmax;
        return (int) v + q.zeroPoint;
    }

    public static float dequantize(int q, ModelMetadata.Quantization p) {
        return ((float) q - (float) p.zeroPoint) * p.scale;
    }
}
