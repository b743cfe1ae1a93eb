package dev.edgematting.core;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Does the model file match its sidecar? The interpreter's own tensors (shape, type,
 * quantization) against the metadata, so that a model whose sidecar describes another export
 * is refused instead of giving a wrong matte silently. The quantization rule is the Java twin
 * of {@code edgematting.runners.tflite.check_tensor} (golden vectors check that both judge
 * alike):
 * <ul>
 *   <li>the tensor type must be the metadata's dtype ({@code <side>.dtype});</li>
 *   <li>metadata without quantization: the tensor must have none (scale 0) unless it is float32,
 *       or, for an input whose normalization is in the model, the identity (scale 1, zero point 0);</li>
 *   <li>metadata with quantization: the tensor's scale must be non-zero and within
 *       {@code 1e-6 * max(1, scale)} of it, and the zero points equal ({@code <side>.quantization}).</li>
 * </ul>
 * Tensor types are given by name ("float32", "uint8", "int8", or anything else, e.g.
 * "int16", which never matches).
 */
public final class TensorCheck {
    private TensorCheck() {}

    /** One mismatch: the metadata key it concerns and what differs. */
    public static final class Problem {
        public final String key;
        public final String message;

        Problem(String key, String message) {
            this.key = key;
            this.message = message;
        }

        @Override
        public String toString() {
            return key + ": " + message;
        }
    }

    /**
     * check_tensor for one side ("input" or "output"): null when the tensor of type
     * {@code dtype} with quantization ({@code scale}, {@code zeroPoint}) (LiteRT's
     * {@code Tensor.quantizationParams()}; scale 0 for none) matches the metadata.
     */
    public static Problem quantization(ModelMetadata m, String side, String dtype, float scale, int zeroPoint) {
        boolean input;
        if ("input".equals(side)) input = true;
        else if ("output".equals(side)) input = false;
        else throw new IllegalArgumentException("side must be \"input\" or \"output\", got " + side);
        String want = (input ? m.inputDType : m.outputDType).jsonName;
        if (!want.equals(dtype)) {
            return new Problem(side + ".dtype", "says " + want + " but the model's " + side + " tensor is " + dtype);
        }
        ModelMetadata.Quantization q = input ? m.inputQuantization : m.outputQuantization;
        double s = scale;
        if (q == null) {
            if (s != 0.0 && !"float32".equals(dtype)
                    && !(input && m.normalizationInModel && Math.abs(s - 1.0) < 1e-6 && zeroPoint == 0)) {
                return new Problem(side + ".quantization", String.format(Locale.ROOT,
                        "is missing but the model's %s tensor has scale %g, zero point %d", side, s, zeroPoint));
            }
            return null;
        }
        if (s == 0.0 || Math.abs((double) q.scale - s) > 1e-6 * Math.max(1.0, s) || q.zeroPoint != zeroPoint) {
            return new Problem(side + ".quantization", String.format(Locale.ROOT,
                    "says scale %g, zero point %d but the model's %s tensor has scale %g, zero point %d",
                    (double) q.scale, q.zeroPoint, side, s, zeroPoint));
        }
        return null;
    }

    /**
     * Every mismatch between the model's tensors and the metadata: input shape (must be
     * [1, height, width, channels]), output element count (height * width), and
     * {@link #quantization} for both sides. Empty when they match.
     */
    public static List<Problem> check(ModelMetadata m, int[] inputShape, String inputType, float inputScale, int inputZeroPoint,
                                      int outputElements, String outputType, float outputScale, int outputZeroPoint) {
        List<Problem> problems = new ArrayList<>();
        int[] want = {1, m.inputHeight, m.inputWidth, m.inputChannels};
        if (!java.util.Arrays.equals(inputShape, want)) {
            problems.add(new Problem("input", "the model's input shape is " + java.util.Arrays.toString(inputShape)
                    + ", the metadata says " + java.util.Arrays.toString(want)));
        }
        if (outputElements != m.outputHeight * m.outputWidth) {
            problems.add(new Problem("output", "the model's output has " + outputElements + " values, the metadata says "
                    + m.outputHeight + "x" + m.outputWidth));
        }
        Problem p = quantization(m, "input", inputType, inputScale, inputZeroPoint);
        if (p != null) problems.add(p);
        p = quantization(m, "output", outputType, outputScale, outputZeroPoint);
        if (p != null) problems.add(p);
        return problems;
    }
}
