package dev.edgematting.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.nio.ByteBuffer;
import org.junit.Test;

/** Metadata parsing and the errors bad sidecars give, independent of the golden files. */
public class ModelMetadataTest {
    static String sidecar(String inputExtra, String outputExtra) {
        return "{\"format\": \"edgematting-artifact\", \"format_version\": 1, \"target\": \"tflite\","
                + " \"architecture\": \"fast-scnn\", \"input\": {\"height\": 4, \"width\": 6, \"channels\": 3,"
                + " \"channel_order\": \"RGB\", \"layout\": \"NHWC\", \"mean\": [127.5, 127.5, 127.5],"
                + " \"std\": [127.5, 127.5, 127.5]" + inputExtra + "},"
                + " \"output\": {\"height\": 4, \"width\": 6, \"channels\": 1, \"meaning\": \"person_probability\","
                + " \"range\": [0.0, 1.0], \"threshold\": 0.5" + outputExtra + "}}";
    }

    static final String FLOAT_IN = ", \"dtype\": \"float32\", \"normalization_in_model\": false, \"quantization\": null";
    static final String FLOAT_OUT = ", \"dtype\": \"float32\", \"quantization\": null";

    private static void expectKey(String json, String key) {
        try {
            ModelMetadata.parse(json);
            fail("accepted; expected an error about '" + key + "'");
        } catch (MetadataException e) {
            assertEquals(e.getMessage(), key, e.key());
            assertTrue(e.getMessage(), e.getMessage().contains(key));
        }
    }

    @Test
    public void parsesAFloatModel() {
        ModelMetadata m = ModelMetadata.parse(sidecar(FLOAT_IN, FLOAT_OUT));
        assertEquals(4, m.inputHeight);
        assertEquals(6, m.inputWidth);
        assertEquals(3, m.inputChannels);
        assertEquals(ModelMetadata.DType.FLOAT32, m.inputDType);
        assertFalse(m.normalizationInModel);
        assertNull(m.inputQuantization);
        assertArrayEquals(new float[] {127.5f, 127.5f, 127.5f}, m.mean, 0f);
        assertEquals(4 * 6 * 3 * 4, m.inputBytes());
        assertEquals(4 * 6 * 4, m.outputBytes());
        assertEquals("person_probability", m.outputMeaning);
        m.requireTarget("tflite");
    }

    @Test
    public void quantizationAsObjectOrPair() {
        ModelMetadata a = ModelMetadata.parse(sidecar(", \"dtype\": \"int8\", \"normalization_in_model\": false,"
                + " \"quantization\": {\"scale\": 0.5, \"zero_point\": -3}", ", \"dtype\": \"uint8\", \"quantization\": [0.00390625, 0]"));
        assertEquals(0.5f, a.inputQuantization.scale, 0f);
        assertEquals(-3, a.inputQuantization.zeroPoint);
        assertEquals(0.00390625f, a.outputQuantization.scale, 0f);
        assertEquals(0, a.outputQuantization.zeroPoint);
        assertEquals(4 * 6 * 3, a.inputBytes());
    }

    @Test
    public void badMetadataNamesTheKey() {
        expectKey(sidecar(", \"dtype\": \"float64\", \"normalization_in_model\": false", FLOAT_OUT), "input.dtype");
        expectKey(sidecar(", \"dtype\": \"int8\", \"normalization_in_model\": false", FLOAT_OUT), "input.quantization");
        expectKey(sidecar(", \"dtype\": \"uint8\", \"normalization_in_model\": false", FLOAT_OUT), "input.quantization");
        expectKey(sidecar(", \"dtype\": \"int8\", \"normalization_in_model\": false, \"quantization\": {\"scale\": 0.1}", FLOAT_OUT),
                "input.quantization.zero_point");
        expectKey(sidecar(", \"dtype\": \"int8\", \"normalization_in_model\": false, \"quantization\": [0, 0]", FLOAT_OUT),
                "input.quantization.scale");
        expectKey(sidecar(", \"dtype\": \"int8\", \"normalization_in_model\": false, \"quantization\": [0.1, 200]", FLOAT_OUT),
                "input.quantization.zero_point");
        expectKey(sidecar(", \"dtype\": \"float32\"", FLOAT_OUT), "input.normalization_in_model");
        expectKey(sidecar(FLOAT_IN, ", \"dtype\": \"uint8\""), "output.quantization");
        expectKey(sidecar(FLOAT_IN, ", \"dtype\": \"bool\""), "output.dtype");
        expectKey(sidecar(FLOAT_IN, FLOAT_OUT).replace("\"channels\": 3", "\"channels\": 5"), "input.channels");
        expectKey(sidecar(FLOAT_IN, FLOAT_OUT).replace("\"channels\": 3", "\"channels\": 4"), "input.channel_order");
        expectKey(sidecar(FLOAT_IN, FLOAT_OUT).replace("\"RGB\"", "\"ARGB\""), "input.channel_order");
        expectKey(sidecar(FLOAT_IN, FLOAT_OUT).replace("\"height\": 4, \"width\": 6, \"channels\": 1", "\"height\": 8, \"width\": 6, \"channels\": 1"),
                "output.height");
        expectKey(sidecar(FLOAT_IN, FLOAT_OUT).replace("\"height\": 4, \"width\": 6, \"channels\": 1", "\"height\": 4, \"width\": 7, \"channels\": 1"),
                "output.width");
        expectKey(sidecar(FLOAT_IN, FLOAT_OUT).replace("\"height\": 4, \"width\": 6, \"channels\": 3", "\"height\": 4.5, \"width\": 6, \"channels\": 3"),
                "input.height");
        expectKey(sidecar(FLOAT_IN, FLOAT_OUT).replace("\"NHWC\"", "\"NCHW\""), "input.layout");
        expectKey(sidecar(FLOAT_IN, FLOAT_OUT).replace("person_probability", "depth"), "output.meaning");
        expectKey(sidecar(FLOAT_IN, FLOAT_OUT).replace("[0.0, 1.0]", "[1.0, 1.0]"), "output.range");
        expectKey(sidecar(FLOAT_IN, FLOAT_OUT).replace("\"std\": [127.5, 127.5, 127.5]", "\"std\": [127.5, 0, 127.5]"), "input.std");
        expectKey(sidecar(FLOAT_IN, FLOAT_OUT).replace(", \"mean\": [127.5, 127.5, 127.5]", ""), "input.mean");
        expectKey(sidecar(FLOAT_IN, FLOAT_OUT).replace("\"format_version\": 1", "\"format_version\": 2"), "format_version");
        expectKey("{\"format_version\": 1, \"output\": {}}", "input");
        expectKey("{\"format_version\": 1, \"input\": []}", "input");
        expectKey("{\"format_version\": 1, \"input\": {\"height\": 1,}}", "(json)");
    }

    @Test
    public void postprocessGuidedFilterIsOptional() {
        String base = sidecar(FLOAT_IN, FLOAT_OUT);
        assertNull("sidecars without postprocess ask for no guided filter", ModelMetadata.parse(base).guidedFilter);
        String with = base.substring(0, base.length() - 1) + ", \"postprocess\": {\"guided_filter\": {\"radius\": 3, \"eps\": 0.001}, \"later\": 1}}";
        GuidedFilter gf = ModelMetadata.parse(with).guidedFilter;
        assertEquals(3, gf.radius);
        assertEquals((float) 0.001, gf.eps, 0f);
        assertNull(ModelMetadata.parse(base.substring(0, base.length() - 1) + ", \"postprocess\": {}}").guidedFilter);
        assertNull(ModelMetadata.parse(base.substring(0, base.length() - 1) + ", \"postprocess\": null}").guidedFilter);
        String head = base.substring(0, base.length() - 1) + ", \"postprocess\": ";
        expectKey(head + "[]}", "postprocess");
        expectKey(head + "{\"guided_filter\": true}}", "postprocess.guided_filter");
        expectKey(head + "{\"guided_filter\": {\"eps\": 0.1}}}", "postprocess.guided_filter.radius");
        expectKey(head + "{\"guided_filter\": {\"radius\": -1, \"eps\": 0.1}}}", "postprocess.guided_filter.radius");
        expectKey(head + "{\"guided_filter\": {\"radius\": 1}}}", "postprocess.guided_filter.eps");
        expectKey(head + "{\"guided_filter\": {\"radius\": 1, \"eps\": 0}}}", "postprocess.guided_filter.eps");
        expectKey(head + "{\"guided_filter\": {\"radius\": 1, \"eps\": \"small\"}}}", "postprocess.guided_filter.eps");
    }

    @Test
    public void requireTargetRejectsOtherTargets() {
        ModelMetadata m = ModelMetadata.parse(sidecar(FLOAT_IN, FLOAT_OUT).replace("\"tflite\"", "\"onnx\""));
        try {
            m.requireTarget("tflite");
            fail("onnx accepted");
        } catch (MetadataException e) {
            assertEquals("target", e.key());
        }
    }

    @Test
    public void buffersAreCheckedAgainstTheContract() {
        ModelMetadata m = ModelMetadata.parse(sidecar(FLOAT_IN, FLOAT_OUT));
        try {
            ModelInput.write(new int[12], 4, 3, m, ByteBuffer.allocate(10));
            fail("small buffer accepted");
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage().contains("needs " + m.inputBytes()));
        }
        try {
            ModelInput.create(new int[11], 4, 3, m);
            fail("pixel count mismatch accepted");
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage().contains("expected 12"));
        }
    }

    @Test
    public void fourthChannelIsOpaqueAlphaInInputUnits() {
        String rgba = sidecar(", \"dtype\": \"uint8\", \"normalization_in_model\": true, \"quantization\": null", FLOAT_OUT)
                .replace("\"channels\": 3", "\"channels\": 4").replace("\"RGB\"", "\"BGRA\"");
        ModelMetadata m = ModelMetadata.parse(rgba);
        int[] px = new int[6 * 4];
        java.util.Arrays.fill(px, 0x00102030); // transparent ARGB: alpha must be ignored
        ByteBuffer b = ModelInput.create(px, 6, 4, m);
        assertEquals(0x30, b.get(0) & 0xFF); // B first
        assertEquals(0x20, b.get(1) & 0xFF);
        assertEquals(0x10, b.get(2) & 0xFF);
        assertEquals(255, b.get(3) & 0xFF);
    }

    /** A prior-frame model's sidecar: channel order "RGB+prior", 4 channels (edgematting.prior). */
    static String priorSidecar(String inputExtra, String outputExtra) {
        return sidecar(inputExtra, outputExtra).replace("\"channels\": 3", "\"channels\": 4").replace("\"RGB\"", "\"RGB+prior\"");
    }

    @Test
    public void priorFrameContractIsNotAnRgbaBitmap() {
        ModelMetadata p = ModelMetadata.parse(priorSidecar(FLOAT_IN, FLOAT_OUT));
        assertTrue(p.takesPrior);
        assertEquals(ModelMetadata.PRIOR_ORDER, p.channelOrder);
        assertEquals(4, p.inputChannels);
        assertFalse(p.isBgr());
        assertFalse("float input: the prior in [0, 1]", p.priorInPixels());
        assertEquals(4 * 6 * 4 * 4, p.inputBytes());
        // the order is read case-insensitively, as contract.validate_metadata does
        assertTrue(ModelMetadata.parse(priorSidecar(FLOAT_IN, FLOAT_OUT).replace("RGB+prior", "rgb+PRIOR")).takesPrior);
        ModelMetadata rgba = ModelMetadata.parse(sidecar(FLOAT_IN, FLOAT_OUT).replace("\"channels\": 3", "\"channels\": 4")
                .replace("\"RGB\"", "\"RGBA\""));
        assertFalse(rgba.takesPrior);
        assertFalse(rgba.priorInPixels());
        assertFalse(ModelMetadata.parse(sidecar(FLOAT_IN, FLOAT_OUT)).takesPrior);
        // uint8 pixels (raw, or LiteRT's scale 1 / zero point 0): the prior as a byte
        assertTrue(ModelMetadata.parse(priorSidecar(", \"dtype\": \"uint8\", \"normalization_in_model\": true,"
                + " \"quantization\": {\"scale\": 1.0, \"zero_point\": 0}", FLOAT_OUT)).priorInPixels());
        expectKey(priorSidecar(FLOAT_IN, FLOAT_OUT).replace("\"channels\": 4", "\"channels\": 3"), "input.channels");
        expectKey(priorSidecar(FLOAT_IN, FLOAT_OUT).replace("RGB+prior", "RGB+alpha"), "input.channel_order");
    }

    @Test
    public void priorChannelValuesByInputType() {
        // hand-computed: prior p clipped to [0, 1]; float input: p itself; pixels in the model:
        // floor(p * 255 + 0.5); then the input's quantization, floor(x / scale + 0.5) + zero_point
        float[] prior = {0.25f, 0.5f, 1.5f, -1f, 0.7f, 0f};
        String[][] cases = {
            {", \"dtype\": \"float32\", \"normalization_in_model\": false, \"quantization\": null"},
            {", \"dtype\": \"uint8\", \"normalization_in_model\": true, \"quantization\": null"},
            {", \"dtype\": \"uint8\", \"normalization_in_model\": true, \"quantization\": {\"scale\": 1.0, \"zero_point\": 0}"},
            {", \"dtype\": \"int8\", \"normalization_in_model\": true, \"quantization\": [1.0, -128]"},
            {", \"dtype\": \"int8\", \"normalization_in_model\": false, \"quantization\": [0.0078125, 3]"},
        };
        float[][] want = {
            {0.25f, 0.5f, 1f, 0f, 0.7f, 0f},
            {64, 128, 255, 0, 179, 0},
            {64, 128, 255, 0, 179, 0},
            {64 - 128, 128 - 128, 255 - 128, -128, 179 - 128, -128},
            {32 + 3, 64 + 3, 127, 3, 90 + 3, 3},
        };
        int[] px = new int[6 * 4];
        java.util.Arrays.fill(px, 0xFF808080);
        for (int k = 0; k < cases.length; k++) {
            ModelMetadata m = ModelMetadata.parse(priorSidecar(cases[k][0], FLOAT_OUT));
            float[] p = new float[24];
            System.arraycopy(prior, 0, p, 0, prior.length);
            ByteBuffer b = ModelInput.create(px, 6, 4, p, m);
            ByteBuffer zeros = ModelInput.create(px, 6, 4, m);
            for (int i = 0; i < prior.length; i++) {
                int o = i * 4 + 3;
                float got = m.inputDType == ModelMetadata.DType.FLOAT32 ? b.getFloat(o * 4)
                        : m.inputDType == ModelMetadata.DType.UINT8 ? b.get(o) & 0xFF : b.get(o);
                assertEquals("case " + k + " prior " + prior[i], want[k][i], got, 0f);
                float zero = m.inputDType == ModelMetadata.DType.FLOAT32 ? zeros.getFloat(o * 4)
                        : m.inputDType == ModelMetadata.DType.UINT8 ? zeros.get(o) & 0xFF : zeros.get(o);
                assertEquals("case " + k + ": no prior is zeros", want[k][5], zero, 0f);
            }
        }
        // a prior for a model without the channel, or of the wrong size, is refused
        ModelMetadata rgb = ModelMetadata.parse(sidecar(FLOAT_IN, FLOAT_OUT));
        try {
            ModelInput.create(px, 6, 4, new float[24], rgb);
            fail("a prior accepted for an RGB model");
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage(), expected.getMessage().contains(ModelMetadata.PRIOR_ORDER));
        }
        try {
            ModelInput.create(px, 6, 4, new float[23], ModelMetadata.parse(priorSidecar(FLOAT_IN, FLOAT_OUT)));
            fail("a prior of the wrong size accepted");
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage(), expected.getMessage().contains("expected 24"));
        }
    }

    @Test
    public void blurRadiusRoundsHalfToEvenLikePython() {
        // Python: max(1, int(round(min(h, w) / 40))): round(2.5) == 2, round(1.5) == 2, round(0.5) == 0
        assertEquals(2, ImageOps.defaultBlurRadius(100, 300));
        assertEquals(2, ImageOps.defaultBlurRadius(60, 60));
        assertEquals(1, ImageOps.defaultBlurRadius(20, 480));
        assertEquals(12, ImageOps.defaultBlurRadius(480, 640));
    }
}
