package dev.edgematting.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.Assume;
import org.junit.Test;

/**
 * The Java core against golden vectors written by {@code tests/android_golden.py}
 * ({@code write_golden_vectors}, the Python reference pipeline). Integer results (uint8/int8
 * input tensors, ARGB composites and cut-outs, comic-effect images, orientations, decode
 * sizes, tensor-check verdicts) must match exactly; float results (model input, alpha, guided
 * filter, blur, comic style and its parts) within the manifest's float tolerance
 * (android_golden.FLOAT_TOLERANCE, 0: bit-exact).
 * Input, alpha and guided cases run both through the one-off functions and through a
 * {@link FrameProcessor} (an input case with a prior-frame model's previous alpha through
 * {@link ModelInput#create(int[], int, int, float[], ModelMetadata)} only); prior-frame
 * streams ({@code prior_sequence}) run frame by frame through
 * {@link FrameProcessor#prepareFrame}, each frame's raw output fed back as the interpreter
 * would write it. Prints one line per stage:
 * {@code GOLDEN stage=<name> cases=<n> max_abs_diff=<d> tolerance=<t>}.
 *
 * <p>The golden directory comes from the system property {@code golden.dir}.
 */
public class GoldenVectorsTest {
    private static final class Stat {
        final TreeSet<String> cases = new TreeSet<>(); // case names; "name/processor" is the same case by another path
        double maxDiff;
        double tolerance;
    }

    private Path dir;
    private final Map<String, Stat> stats = new TreeMap<>();
    private final List<String> failures = new ArrayList<>();
    private double floatTol;

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(Object o) {
        return (Map<String, Object>) o;
    }

    @SuppressWarnings("unchecked")
    private static List<Object> list(Object o) {
        return (List<Object>) o;
    }

    private static int num(Object o) {
        return (int) (double) (Double) o;
    }

    private ByteBuffer bytes(Map<String, Object> ref) throws IOException {
        byte[] b = Files.readAllBytes(dir.resolve((String) ref.get("file")));
        int n = 1;
        for (Object d : list(ref.get("shape"))) n *= num(d);
        int size = "float32".equals(ref.get("dtype")) ? 4 : 1;
        assertEquals("size of " + ref.get("file"), (long) n * size, b.length);
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    }

    private float[] floats(Map<String, Object> ref) throws IOException {
        assertEquals("float32", ref.get("dtype"));
        ByteBuffer b = bytes(ref);
        float[] f = new float[b.capacity() / 4];
        b.asFloatBuffer().get(f);
        return f;
    }

    /** An HxWx3 uint8 photo as ARGB ints; the alpha byte is deliberately junk (must be ignored). */
    private int[] photo(Map<String, Object> ref, int[] hw) throws IOException {
        List<Object> shape = list(ref.get("shape"));
        int h = num(shape.get(0));
        int w = num(shape.get(1));
        assertEquals(3, num(shape.get(2)));
        hw[0] = h;
        hw[1] = w;
        ByteBuffer b = bytes(ref);
        int[] argb = new int[h * w];
        for (int i = 0; i < h * w; i++) {
            int junkAlpha = (i * 37 + 11) & 0xFF;
            argb[i] = (junkAlpha << 24) | ((b.get(3 * i) & 0xFF) << 16) | ((b.get(3 * i + 1) & 0xFF) << 8) | (b.get(3 * i + 2) & 0xFF);
        }
        return argb;
    }

    private void record(String stage, String name, double diff, double tol) {
        Stat s = stats.computeIfAbsent(stage, k -> new Stat());
        s.cases.add(name.contains("/") ? name.substring(0, name.indexOf('/')) : name);
        s.tolerance = tol;
        if (diff > s.maxDiff || Double.isNaN(diff)) s.maxDiff = diff;
        if (!(diff <= tol)) {
            failures.add(String.format(Locale.ROOT, "%s/%s: max abs diff %.9g > %.3g", stage, name, diff, tol));
        }
    }

    private static double maxDiff(float[] a, float[] b, String what) {
        assertEquals("length of " + what, b.length, a.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - (double) b[i]);
            if (Double.isNaN(d)) return Double.NaN;
            m = Math.max(m, d);
        }
        return m;
    }

    /** The frame processor's path: prepare (resize weights, buffers), raw output copied into its output buffer, alpha. */
    private float[] viaProcessor(ModelMetadata m, int[] argb, int w, int h, Map<String, Object> raw, GuidedFilter gf) throws IOException {
        FrameProcessor proc = new FrameProcessor(m);
        proc.setGuidedFilter(gf);
        proc.prepare(argb, w, h);
        copyRaw(m, raw, proc.output());
        return proc.alpha().clone();
    }

    /** A raw model output from the goldens into an output tensor buffer (as the interpreter writes it). */
    private void copyRaw(ModelMetadata m, Map<String, Object> raw, ByteBuffer out) throws IOException {
        assertEquals("raw output dtype", m.outputDType.jsonName, raw.get("dtype"));
        ByteBuffer src = bytes(raw);
        out.clear();
        if (m.outputDType == ModelMetadata.DType.FLOAT32) {
            while (src.remaining() > 0) out.putFloat(src.getFloat()); // the direct buffer's native order
        } else {
            out.put(src);
        }
    }

    /** Max |got - expected| of an input tensor: float values, or the uint8/int8 integers. */
    private double inputDiff(ModelMetadata m, ByteBuffer got, Map<String, Object> exp, String name) throws IOException {
        ByteBuffer want = bytes(exp);
        assertEquals(name + " dtype", m.inputDType.jsonName, exp.get("dtype"));
        assertEquals(name + " bytes", want.capacity(), got.capacity());
        if (m.inputDType == ModelMetadata.DType.FLOAT32) {
            float[] g = new float[got.capacity() / 4];
            got.duplicate().order(got.order()).asFloatBuffer().get(g);
            return maxDiff(g, floats(exp), name);
        }
        boolean signed = m.inputDType == ModelMetadata.DType.INT8;
        double d = 0;
        for (int i = 0; i < want.capacity(); i++) {
            int a = signed ? got.get(i) : got.get(i) & 0xFF;
            int b = signed ? want.get(i) : want.get(i) & 0xFF;
            d = Math.max(d, Math.abs(a - b));
        }
        return d;
    }

    @Test
    public void javaCoreMatchesPythonGoldens() throws IOException {
        String prop = System.getProperty("golden.dir");
        Assume.assumeTrue("set -Dgolden.dir (write it with python tests/android_golden.py DIR)", prop != null && !prop.isEmpty());
        dir = Paths.get(prop);
        assertTrue("golden dir has no manifest.json: " + dir, Files.isRegularFile(dir.resolve("manifest.json")));
        Map<String, Object> manifest = Json.parseObject(new String(Files.readAllBytes(dir.resolve("manifest.json")), StandardCharsets.UTF_8));
        assertEquals("edgematting-android-golden", manifest.get("format"));
        floatTol = (Double) map(manifest.get("tolerance")).get("float");
        double intTol = (Double) map(manifest.get("tolerance")).get("int");
        TreeSet<String> seenStages = new TreeSet<>();
        try {
            for (Object o : list(manifest.get("cases"))) {
                Map<String, Object> c = map(o);
                String stage = (String) c.get("stage");
                String name = (String) c.get("name");
                seenStages.add(stage);
                int[] hw = new int[2];
                int[] argb = c.get("photo") == null ? null : photo(map(c.get("photo")), hw);
                int h = hw[0];
                int w = hw[1];
                switch (stage) {
                    case "input": {
                        Map<String, Object> exp = map(c.get("expected"));
                        ModelMetadata m = ModelMetadata.fromMap(map(c.get("metadata")));
                        // a prior-frame model's previous alpha (absent: zeros)
                        float[] prior = c.get("prior") == null ? null : floats(map(c.get("prior")));
                        assertTrue(name + ": a prior for a model without the prior channel", prior == null || m.takesPrior);
                        // the one-off path and the frame processor's buffer-reusing path (a photo: zeros as the prior)
                        FrameProcessor proc = new FrameProcessor(m);
                        ByteBuffer[] paths = prior == null ? new ByteBuffer[] {ModelInput.create(argb, w, h, m), proc.prepare(argb, w, h)}
                                : new ByteBuffer[] {ModelInput.create(argb, w, h, prior, m)};
                        for (ByteBuffer got : paths) {
                            record("input_" + m.inputDType.jsonName, name, inputDiff(m, got, exp, name),
                                    m.inputDType == ModelMetadata.DType.FLOAT32 ? floatTol : intTol);
                        }
                        break;
                    }
                    case "prior_sequence": {
                        // a camera stream: each frame's input holds the previous frame's alpha (FrameProcessor.prepareFrame)
                        ModelMetadata m = ModelMetadata.fromMap(map(c.get("metadata")));
                        assertTrue(name + " is a prior-frame model", m.takesPrior);
                        FrameProcessor proc = new FrameProcessor(m);
                        int t = 0;
                        for (Object fo : list(c.get("frames"))) {
                            Map<String, Object> f = map(fo);
                            int[] fhw = new int[2];
                            int[] frame = photo(map(f.get("photo")), fhw);
                            if (Boolean.TRUE.equals(f.get("reset"))) proc.resetStream();
                            boolean zeros = Boolean.TRUE.equals(f.get("zeros"));
                            ByteBuffer got = proc.prepareFrame(frame, fhw[1], fhw[0]);
                            // zeros exactly where Python fed none: a first frame, a new size, a reset
                            boolean fedZeros = zeros == !proc.fedPrior();
                            double d = fedZeros ? inputDiff(m, got, map(f.get("expected")), name + "/" + t) : 1e9;
                            record("prior_sequence_" + m.inputDType.jsonName, name + "/frame" + t, d,
                                    m.inputDType == ModelMetadata.DType.FLOAT32 ? floatTol : intTol);
                            copyRaw(m, map(f.get("raw")), proc.output());
                            proc.alpha();
                            t++;
                        }
                        break;
                    }
                    case "alpha": {
                        ModelMetadata m = ModelMetadata.fromMap(map(c.get("metadata")));
                        Map<String, Object> raw = map(c.get("raw"));
                        assertEquals(name + " raw dtype", m.outputDType.jsonName, raw.get("dtype"));
                        float[] want = floats(map(c.get("expected")));
                        float[] got = ModelOutput.toAlpha(bytes(raw), m, w, h);
                        record("alpha_" + m.outputDType.jsonName, name, maxDiff(got, want, name), floatTol);
                        record("alpha_" + m.outputDType.jsonName, name + "/processor", maxDiff(viaProcessor(m, argb, w, h, raw, null), want, name), floatTol);
                        break;
                    }
                    case "guided": {
                        ModelMetadata m = ModelMetadata.fromMap(map(c.get("metadata")));
                        Map<String, Object> raw = map(c.get("raw"));
                        GuidedFilter gf;
                        if (c.get("radius") == null) {
                            gf = m.guidedFilter; // the sidecar's postprocess.guided_filter
                            assertTrue(name + ": metadata has no guided_filter", gf != null);
                        } else {
                            gf = new GuidedFilter(num(c.get("radius")), (Double) c.get("eps"));
                        }
                        float[] want = floats(map(c.get("expected")));
                        float[] got = ModelOutput.toAlphaGuided(bytes(raw), m, argb, w, h, gf);
                        record("guided", name, maxDiff(got, want, name), floatTol);
                        record("guided", name + "/processor", maxDiff(viaProcessor(m, argb, w, h, raw, gf), want, name), floatTol);
                        break;
                    }
                    case "orient": {
                        Orientation t = Orientation.fromExif(num(c.get("orientation")));
                        int[] got = t.apply(argb, w, h);
                        List<Object> shape = list(map(c.get("expected")).get("shape"));
                        ByteBuffer want = bytes(map(c.get("expected")));
                        double d = (num(shape.get(0)) == t.outHeight(w, h) && num(shape.get(1)) == t.outWidth(w, h)) ? 0 : 1e9;
                        for (int i = 0; i < got.length && d == 0; i++) {
                            int p = got[i];
                            d = Math.max(d, Math.abs(((p >> 16) & 0xFF) - (want.get(3 * i) & 0xFF)));
                            d = Math.max(d, Math.abs(((p >> 8) & 0xFF) - (want.get(3 * i + 1) & 0xFF)));
                            d = Math.max(d, Math.abs((p & 0xFF) - (want.get(3 * i + 2) & 0xFF)));
                        }
                        record("orient", name, d, intTol);
                        break;
                    }
                    case "decode": {
                        int ph = num(c.get("height"));
                        int pw = num(c.get("width"));
                        int max = num(c.get("max_side"));
                        List<Object> bounded = list(c.get("bounded"));
                        int[] got = PhotoDecode.boundedSize(ph, pw, max);
                        double d = Math.abs(PhotoDecode.sampleSize(ph, pw, max) - num(c.get("sample_size")));
                        d = Math.max(d, Math.abs(got[0] - num(bounded.get(0))));
                        d = Math.max(d, Math.abs(got[1] - num(bounded.get(1))));
                        record("decode", name, d, intTol);
                        break;
                    }
                    case "tensor_check": {
                        ModelMetadata m = ModelMetadata.fromMap(map(c.get("metadata")));
                        TensorCheck.Problem p = TensorCheck.quantization(m, (String) c.get("side"), (String) c.get("tensor_dtype"),
                                (float) (double) (Double) c.get("scale"), num(c.get("zero_point")));
                        Object wantKey = c.get("expected_key");
                        boolean same = p == null ? wantKey == null : p.key.equals(wantKey);
                        if (!same) System.out.println("tensor_check " + name + ": Java " + p + ", Python " + wantKey);
                        record("tensor_check", name, same ? 0 : 1, intTol);
                        break;
                    }
                    case "composite": {
                        Map<String, Object> exp = map(c.get("expected"));
                        float[] alpha = floats(map(c.get("alpha")));
                        Map<String, Object> bg = map(c.get("background"));
                        String type = (String) bg.get("type");
                        int[] got;
                        switch (type) {
                            case "color": {
                                List<Object> rgb = list(bg.get("rgb"));
                                got = Compositor.overColor(argb, alpha, w, h, (num(rgb.get(0)) << 16) | (num(rgb.get(1)) << 8) | num(rgb.get(2)));
                                break;
                            }
                            case "image": {
                                int[] bhw = new int[2];
                                int[] bgArgb = photo(map(bg.get("image")), bhw);
                                got = Compositor.overImage(argb, alpha, w, h, bgArgb, bhw[1], bhw[0]);
                                break;
                            }
                            case "blur":
                                got = bg.get("radius") == null ? Compositor.overBlur(argb, alpha, w, h)
                                        : Compositor.overBlur(argb, alpha, w, h, num(bg.get("radius")));
                                break;
                            case "cutout":
                                got = Compositor.cutout(argb, alpha, w, h);
                                break;
                            default:
                                throw new AssertionError("unknown background type " + type);
                        }
                        int ch = num(list(exp.get("shape")).get(2));
                        ByteBuffer want = bytes(exp);
                        double d = 0;
                        for (int i = 0; i < h * w; i++) {
                            int p = got[i];
                            int[] gotC = {(p >> 16) & 0xFF, (p >> 8) & 0xFF, p & 0xFF, (p >>> 24) & 0xFF};
                            for (int k = 0; k < ch; k++) d = Math.max(d, Math.abs(gotC[k] - (want.get(i * ch + k) & 0xFF)));
                            if (ch == 3) d = Math.max(d, Math.abs(gotC[3] - 255)); // composites are opaque
                        }
                        record(type.equals("cutout") ? "cutout" : "composite_" + type, name, d, intTol);
                        break;
                    }
                    case "blur": {
                        float[] got = ImageOps.boxBlur(ImageOps.argbToRgb(argb, w, h), h, w, 3, num(c.get("radius")), 3);
                        record("blur", name, maxDiff(got, floats(map(c.get("expected"))), name), floatTol);
                        break;
                    }
                    case "comic": {
                        int[] got = Comic.comic(argb, floats(map(c.get("alpha"))), w, h);
                        ByteBuffer want = bytes(map(c.get("expected")));
                        double d = 0;
                        for (int i = 0; i < h * w; i++) {
                            int p = got[i];
                            d = Math.max(d, Math.abs(((p >> 16) & 0xFF) - (want.get(3 * i) & 0xFF)));
                            d = Math.max(d, Math.abs(((p >> 8) & 0xFF) - (want.get(3 * i + 1) & 0xFF)));
                            d = Math.max(d, Math.abs((p & 0xFF) - (want.get(3 * i + 2) & 0xFF)));
                            d = Math.max(d, Math.abs(((p >>> 24) & 0xFF) - 255)); // opaque
                        }
                        record("comic", name, d, intTol);
                        break;
                    }
                    case "comic_style": {
                        float[] got = Comic.comicStyle(ImageOps.argbToRgb(argb, w, h), h, w);
                        record("comic_style", name, maxDiff(got, floats(map(c.get("expected"))), name), floatTol);
                        break;
                    }
                    case "comic_smooth": {
                        Map<String, Object> k = map(c.get("params"));
                        float[] got = Comic.edgePreservingSmooth(ImageOps.argbToRgb(argb, w, h), h, w, num(k.get("radius")),
                                num(k.get("passes")), (Double) k.get("sigma_range"), (Double) k.get("sigma_space"));
                        record("comic_smooth", name, maxDiff(got, floats(map(c.get("expected"))), name), floatTol);
                        break;
                    }
                    case "comic_quantize": {
                        float[] got = Comic.quantizeLevels(floats(map(c.get("image"))), num(map(c.get("params")).get("levels")));
                        record("comic_quantize", name, maxDiff(got, floats(map(c.get("expected"))), name), floatTol);
                        break;
                    }
                    case "comic_outline": {
                        Map<String, Object> img = map(c.get("image"));
                        List<Object> shape = list(img.get("shape"));
                        Map<String, Object> k = map(c.get("params"));
                        float[] got = Comic.outlineStrength(floats(img), num(shape.get(0)), num(shape.get(1)),
                                (Double) k.get("low"), (Double) k.get("high"));
                        record("comic_outline", name, maxDiff(got, floats(map(c.get("expected"))), name), floatTol);
                        break;
                    }
                    default:
                        fail("unknown stage " + stage);
                }
            }
        } finally {
            for (Map.Entry<String, Stat> e : stats.entrySet()) {
                System.out.println(String.format(Locale.ROOT, "GOLDEN stage=%s cases=%d max_abs_diff=%.9g tolerance=%.3g",
                        e.getKey(), e.getValue().cases.size(), e.getValue().maxDiff, e.getValue().tolerance));
            }
            System.out.flush();
        }
        for (Object s : list(manifest.get("stages"))) assertTrue("stage never run: " + s, seenStages.contains((String) s));
        if (!failures.isEmpty()) fail("Java core differs from the Python goldens:\n  " + String.join("\n  ", failures));
    }

    @Test
    public void metadataFilesFromPythonAreJudgedAlike() throws IOException {
        String prop = System.getProperty("golden.dir");
        Assume.assumeTrue("set -Dgolden.dir", prop != null && !prop.isEmpty());
        Path d = Paths.get(prop);
        Map<String, Object> manifest = Json.parseObject(new String(Files.readAllBytes(d.resolve("manifest.json")), StandardCharsets.UTF_8));
        int good = 0;
        int bad = 0;
        for (Object o : list(manifest.get("metadata_files"))) {
            Map<String, Object> f = map(o);
            String file = (String) f.get("file");
            String text = new String(Files.readAllBytes(d.resolve(file)), StandardCharsets.UTF_8);
            if (Boolean.TRUE.equals(f.get("valid"))) {
                ModelMetadata m = ModelMetadata.parse(text).requireTarget("tflite");
                assertTrue(file, m.inputBytes() > 0 && m.outputBytes() > 0);
                good++;
            } else {
                String key = (String) f.get("key");
                try {
                    ModelMetadata.parse(text);
                    fail(file + " was accepted; expected an error about '" + key + "'");
                } catch (MetadataException e) {
                    assertEquals(file + ": " + e.getMessage(), key, e.key());
                    assertTrue(file + " message names the key: " + e.getMessage(), e.getMessage().contains("'" + key + "'"));
                }
                bad++;
            }
        }
        System.out.println("GOLDEN_METADATA good=" + good + " bad=" + bad);
        assertTrue("no good metadata files", good > 0);
        assertTrue("no bad metadata files", bad > 0);
    }
}
