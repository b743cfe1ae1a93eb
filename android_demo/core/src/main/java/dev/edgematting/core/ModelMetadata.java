package dev.edgematting.core;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The model contract, read from the sidecar metadata ({@code <model file>.json}, schema
 * {@code edgematting-artifact} format_version 1, written by {@code edgematting convert}).
 * Nothing about the model (size, channels, dtype, normalization, output meaning) is
 * hard-coded in the app: it all comes from here. Validation mirrors
 * {@code edgematting.contract.validate_metadata} on the Python side; every problem raises a
 * {@link MetadataException} naming the offending key.
 */
public final class ModelMetadata {
    /** Element type of a model tensor. */
    public enum DType {
        FLOAT32("float32", 4, 0, 0),
        UINT8("uint8", 1, 0, 255),
        INT8("int8", 1, -128, 127);

        public final String jsonName;
        public final int bytes;
        public final int qmin;
        public final int qmax;

        DType(String jsonName, int bytes, int qmin, int qmax) {
            this.jsonName = jsonName;
            this.bytes = bytes;
            this.qmin = qmin;
            this.qmax = qmax;
        }

        public boolean isQuantized() {
            return this != FLOAT32;
        }

        static DType fromJson(String key, String name) {
            for (DType d : values()) if (d.jsonName.equals(name)) return d;
            throw new MetadataException(key, "unknown dtype \"" + name + "\"; expected float32, uint8 or int8");
        }
    }

    /** Affine quantization: {@code real = (q - zeroPoint) * scale}. */
    public static final class Quantization {
        public final float scale;
        public final int zeroPoint;

        public Quantization(float scale, int zeroPoint) {
            this.scale = scale;
            this.zeroPoint = zeroPoint;
        }
    }

    /** Output meanings the core knows how to turn into an alpha matte. */
    public static final List<String> KNOWN_MEANINGS = List.of("person_probability", "alpha_matte");

    /**
     * {@code input.channel_order} of a prior-frame model (edgematting.prior.PRIOR_ORDER): RGB,
     * then the alpha this model output for the previous frame. Not "RGBA" (a bitmap whose 4th
     * byte the model ignores).
     */
    public static final String PRIOR_ORDER = "RGB+prior";

    /**
     * "RGBA"/"BGRA": a bitmap whose 4th byte is ignored; "RGB+prior": the 4th channel is the
     * previous frame's alpha in [0, 1], zeros on a first frame (edgematting.contract.CHANNEL_ORDERS).
     */
    public static final List<String> CHANNEL_ORDERS = List.of("RGB", "BGR", "RGBA", "BGRA", PRIOR_ORDER);

    public final String modelName;
    public final String architecture;
    public final String target; // may be null: the core itself does not need it
    public final String precision;

    public final int inputHeight;
    public final int inputWidth;
    public final int inputChannels;
    public final String channelOrder;
    private final boolean bgr; // channelOrder starts with BGR (read per pixel: computed once)
    /**
     * A prior-frame model ({@link #PRIOR_ORDER}): its 4th input channel is the alpha it output
     * for the previous frame at model size, zeros on a first frame or a single photo
     * ({@link ModelInput}, {@link FrameProcessor#prepareFrame}).
     */
    public final boolean takesPrior;
    public final DType inputDType;
    /** true: the model takes pixels in [0, 255] (normalization folded into the graph). */
    public final boolean normalizationInModel;
    /** Per-colour mean/std in R, G, B order (as imageops.to_model_input takes them). */
    public final float[] mean;
    public final float[] std;
    public final Quantization inputQuantization; // null for float32 / raw uint8 pixels

    public final int outputHeight;
    public final int outputWidth;
    public final DType outputDType;
    public final Quantization outputQuantization; // null for float32
    public final String outputMeaning;
    public final float rangeLow;
    public final float rangeHigh;
    public final float threshold;
    /**
     * The optional {@code postprocess.guided_filter} ({radius, eps}): the sidecar asks for the
     * guided-filter upsampling of the alpha; null when it asks for none (older sidecars).
     */
    public final GuidedFilter guidedFilter;

    private ModelMetadata(Map<String, Object> root) {
        Object fmt = root.get("format");
        if (fmt != null && !"edgematting-artifact".equals(fmt)) {
            throw new MetadataException("format", "expected \"edgematting-artifact\", got " + describe(fmt));
        }
        Object version = require(root, "format_version", "");
        if (!(version instanceof Double) || ((Double) version) != 1.0) {
            throw new MetadataException("format_version", "unsupported version " + describe(version) + "; this app reads version 1");
        }
        modelName = optString(root, "model_name", "");
        architecture = optString(root, "architecture", "");
        target = optString(root, "target", null);
        precision = optString(root, "precision", "");

        Map<String, Object> in = object(root, "input", "");
        inputHeight = positiveInt(in, "height", "input.");
        inputWidth = positiveInt(in, "width", "input.");
        inputChannels = integer(in, "channels", "input.");
        if (inputChannels != 3 && inputChannels != 4) {
            throw new MetadataException("input.channels", "must be 3 or 4, got " + inputChannels);
        }
        String order = string(in, "channel_order", "input.").toUpperCase(Locale.ROOT);
        takesPrior = order.equals(PRIOR_ORDER.toUpperCase(Locale.ROOT));
        if (takesPrior) {
            order = PRIOR_ORDER;
            if (inputChannels != 4) {
                throw new MetadataException("input.channels", "\"" + PRIOR_ORDER + "\" (RGB + the previous frame's alpha) needs 4 channels, got "
                        + inputChannels);
            }
        } else if (!CHANNEL_ORDERS.contains(order)) {
            throw new MetadataException("input.channel_order", "unknown order \"" + order + "\"; expected one of " + CHANNEL_ORDERS);
        }
        if (!takesPrior && order.length() != inputChannels) {
            throw new MetadataException("input.channel_order", "\"" + order + "\" does not match input.channels=" + inputChannels);
        }
        channelOrder = order;
        bgr = channelOrder.startsWith("BGR");
        Object layout = in.get("layout");
        if (layout != null && !"NHWC".equals(layout)) {
            throw new MetadataException("input.layout", "only NHWC is supported on Android, got " + describe(layout));
        }
        inputDType = DType.fromJson("input.dtype", string(in, "dtype", "input."));
        Object nim = require(in, "normalization_in_model", "input.");
        if (!(nim instanceof Boolean)) throw new MetadataException("input.normalization_in_model", "must be true or false, got " + describe(nim));
        normalizationInModel = (Boolean) nim;
        if (!normalizationInModel) {
            mean = floats3(in, "mean", "input.", false);
            std = floats3(in, "std", "input.", true);
        } else {
            mean = new float[] {0f, 0f, 0f};
            std = new float[] {1f, 1f, 1f};
        }
        inputQuantization = quantization(in, "input.", inputDType,
                inputDType == DType.INT8 || (inputDType == DType.UINT8 && !normalizationInModel));

        Map<String, Object> out = object(root, "output", "");
        outputHeight = positiveInt(out, "height", "output.");
        outputWidth = positiveInt(out, "width", "output.");
        if (outputHeight != inputHeight) {
            throw new MetadataException("output.height", outputHeight + " does not match input.height=" + inputHeight);
        }
        if (outputWidth != inputWidth) {
            throw new MetadataException("output.width", outputWidth + " does not match input.width=" + inputWidth);
        }
        int outChannels = integer(out, "channels", "output.");
        if (outChannels != 1) throw new MetadataException("output.channels", "must be 1 (one alpha/probability map), got " + outChannels);
        outputDType = DType.fromJson("output.dtype", string(out, "dtype", "output."));
        outputQuantization = quantization(out, "output.", outputDType, outputDType.isQuantized());
        outputMeaning = string(out, "meaning", "output.");
        if (!KNOWN_MEANINGS.contains(outputMeaning)) {
            throw new MetadataException("output.meaning", "unknown meaning \"" + outputMeaning + "\"; expected one of " + KNOWN_MEANINGS);
        }
        Object range = out.get("range");
        if (range == null) {
            rangeLow = 0f;
            rangeHigh = 1f;
        } else {
            if (!(range instanceof List) || ((List<?>) range).size() != 2
                    || !(((List<?>) range).get(0) instanceof Double) || !(((List<?>) range).get(1) instanceof Double)) {
                throw new MetadataException("output.range", "must be [low, high], got " + describe(range));
            }
            rangeLow = (float) (double) (Double) ((List<?>) range).get(0);
            rangeHigh = (float) (double) (Double) ((List<?>) range).get(1);
            if (!(rangeHigh > rangeLow) || !Float.isFinite(rangeHigh - rangeLow)) {
                throw new MetadataException("output.range", "high must be greater than low, got " + describe(range));
            }
        }
        Object thr = out.get("threshold");
        if (thr != null && !(thr instanceof Double)) throw new MetadataException("output.threshold", "must be a number, got " + describe(thr));
        threshold = thr == null ? 0.5f : (float) (double) (Double) thr;
        guidedFilter = guidedFilter(root.get("postprocess"));
    }

    /** contract._guided_filter: the optional postprocess section; unknown keys inside are ignored. */
    @SuppressWarnings("unchecked")
    private static GuidedFilter guidedFilter(Object post) {
        if (post == null) return null;
        if (!(post instanceof Map)) throw new MetadataException("postprocess", "must be an object, got " + describe(post));
        Object gf = ((Map<String, Object>) post).get("guided_filter");
        if (gf == null) return null;
        if (!(gf instanceof Map)) {
            throw new MetadataException("postprocess.guided_filter", "must be {\"radius\": r, \"eps\": e}, got " + describe(gf));
        }
        Map<String, Object> g = (Map<String, Object>) gf;
        int radius = positiveInt(g, "radius", "postprocess.guided_filter.");
        Object eps = require(g, "eps", "postprocess.guided_filter.");
        if (!(eps instanceof Double) || !(((float) (double) (Double) eps) > 0f) || !Float.isFinite((float) (double) (Double) eps)) {
            throw new MetadataException("postprocess.guided_filter.eps", "must be a positive number, got " + describe(eps));
        }
        return new GuidedFilter(radius, (Double) eps);
    }

    /** Parses and validates sidecar JSON text. */
    public static ModelMetadata parse(String json) {
        Map<String, Object> root;
        try {
            root = Json.parseObject(json);
        } catch (Json.ParseException e) {
            throw new MetadataException("(json)", "not valid JSON: " + e.getMessage());
        }
        return new ModelMetadata(root);
    }

    /** Validates an already parsed sidecar object. */
    public static ModelMetadata fromMap(Map<String, Object> root) {
        if (root == null) throw new MetadataException("(root)", "metadata is null");
        return new ModelMetadata(root);
    }

    /** Throws unless the metadata describes a model of the given target (e.g. "tflite"). */
    public ModelMetadata requireTarget(String expected) {
        if (!expected.equals(target)) {
            throw new MetadataException("target", "expected \"" + expected + "\", got " + describe(target));
        }
        return this;
    }

    /** Bytes of the input tensor (batch 1). */
    public int inputBytes() {
        return inputHeight * inputWidth * inputChannels * inputDType.bytes;
    }

    /** Bytes of the output tensor (batch 1, one channel). */
    public int outputBytes() {
        return outputHeight * outputWidth * outputDType.bytes;
    }

    /**
     * true when a prior-frame model's 4th channel is on the pixel scale, {@code round(prior * 255)}
     * (contract._prior_in_pixels): whenever the normalization is in the model, whose input is
     * then pixels 0..255; else the prior itself in [0, 1].
     */
    public boolean priorInPixels() {
        return takesPrior && normalizationInModel;
    }

    /** true when channel order puts blue first (BGR, BGRA). */
    public boolean isBgr() {
        return bgr;
    }

    // -- helpers ---------------------------------------------------------------------------

    private static String describe(Object v) {
        if (v == null) return "null";
        if (v instanceof String) return "\"" + v + "\"";
        return String.valueOf(v);
    }

    private static Object require(Map<String, Object> m, String key, String prefix) {
        if (!m.containsKey(key)) throw new MetadataException(prefix + key, "missing");
        return m.get(key);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Map<String, Object> m, String key, String prefix) {
        Object v = require(m, key, prefix);
        if (!(v instanceof Map)) throw new MetadataException(prefix + key, "must be an object, got " + describe(v));
        return (Map<String, Object>) v;
    }

    private static String string(Map<String, Object> m, String key, String prefix) {
        Object v = require(m, key, prefix);
        if (!(v instanceof String)) throw new MetadataException(prefix + key, "must be a string, got " + describe(v));
        return (String) v;
    }

    private static String optString(Map<String, Object> m, String key, String dflt) {
        Object v = m.get(key);
        if (v == null) return dflt;
        if (!(v instanceof String)) throw new MetadataException(key, "must be a string, got " + describe(v));
        return (String) v;
    }

    private static int toInt(Object v, String fullKey) {
        if (!(v instanceof Double)) throw new MetadataException(fullKey, "must be an integer, got " + describe(v));
        double d = (Double) v;
        if (d != Math.rint(d) || Math.abs(d) > 1e9) throw new MetadataException(fullKey, "must be an integer, got " + describe(v));
        return (int) d;
    }

    private static int integer(Map<String, Object> m, String key, String prefix) {
        return toInt(require(m, key, prefix), prefix + key);
    }

    private static int positiveInt(Map<String, Object> m, String key, String prefix) {
        int v = integer(m, key, prefix);
        if (v <= 0) throw new MetadataException(prefix + key, "must be positive, got " + v);
        return v;
    }

    private static float[] floats3(Map<String, Object> m, String key, String prefix, boolean nonZero) {
        Object v = require(m, key, prefix);
        if (!(v instanceof List) || ((List<?>) v).size() != 3) {
            throw new MetadataException(prefix + key, "must be a list of 3 numbers, got " + describe(v));
        }
        float[] f = new float[3];
        for (int i = 0; i < 3; i++) {
            Object e = ((List<?>) v).get(i);
            if (!(e instanceof Double)) throw new MetadataException(prefix + key, "must be a list of 3 numbers, got " + describe(v));
            f[i] = (float) (double) (Double) e; // round to float32 as numpy's asarray(.., float32)
            if (!Float.isFinite(f[i]) || (nonZero && f[i] == 0f)) {
                throw new MetadataException(prefix + key, "must hold finite" + (nonZero ? ", non-zero" : "") + " numbers, got " + describe(v));
            }
        }
        return f;
    }

    /** Accepts {"scale": s, "zero_point": z} or [s, z]; null when absent and not required. */
    private static Quantization quantization(Map<String, Object> m, String prefix, DType dtype, boolean required) {
        String key = prefix + "quantization";
        Object q = m.get("quantization");
        if (q == null) {
            if (required) throw new MetadataException(key, "missing; a " + dtype.jsonName + " tensor needs {\"scale\", \"zero_point\"}");
            return null;
        }
        if (dtype == DType.FLOAT32) return null; // float tensors ignore quantization parameters
        Object scale;
        Object zp;
        if (q instanceof Map) {
            Map<?, ?> qm = (Map<?, ?>) q;
            if (!qm.containsKey("scale")) throw new MetadataException(key + ".scale", "missing");
            if (!qm.containsKey("zero_point")) throw new MetadataException(key + ".zero_point", "missing");
            scale = qm.get("scale");
            zp = qm.get("zero_point");
        } else if (q instanceof List && ((List<?>) q).size() == 2) {
            scale = ((List<?>) q).get(0);
            zp = ((List<?>) q).get(1);
        } else {
            throw new MetadataException(key, "must be {\"scale\": s, \"zero_point\": z} or [s, z], got " + describe(q));
        }
        if (!(scale instanceof Double)) throw new MetadataException(key + ".scale", "must be a number, got " + describe(scale));
        float s = (float) (double) (Double) scale;
        if (!(s > 0f) || !Float.isFinite(s)) throw new MetadataException(key + ".scale", "must be a positive finite number, got " + describe(scale));
        int z = toInt(zp, key + ".zero_point");
        if (z < dtype.qmin || z > dtype.qmax) {
            throw new MetadataException(key + ".zero_point", z + " is outside the " + dtype.jsonName + " range");
        }
        return new Quantization(s, z);
    }
}
