package dev.edgematting.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotSame;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.Assume;
import org.junit.Test;

/**
 * Buffer reuse across camera frames: after the first frame of a size, the whole core side of
 * a frame (RGBA plane -> ARGB, orientation, model input, alpha plain and guided, every
 * composite) allocates nothing, and gives the same values as the one-off functions.
 *
 * <p>"Allocates nothing" is measured with HotSpot's per-thread allocation counter
 * ({@code com.sun.management.ThreadMXBean#getCurrentThreadAllocatedBytes}): the bytes this
 * thread allocated on the Java heap during each of the 40 frames after the first, less the
 * counter's own cost (two back-to-back reads), must be 0, except for the JIT's own one-off
 * bytes in at most 6 frames (see {@link #JIT_NOISE_FRAMES}); an allocation in our code,
 * which would recur every frame, fails it. Returned arrays must also be the same instances
 * as on the first frame.
 */
public class FrameProcessorTest {
    private static final int W = 64;
    private static final int H = 48;

    /** What the app keeps across frames besides the processor. */
    private static final class Frame {
        final ByteBuffer rgbaPlane;
        final int rowStride;
        final int[] raw = new int[W * H];
        final int[] upright = new int[W * H];
        final Orientation orientation = Orientation.forCamera(90, true);
        final float[] background = new float[W * H * 3];
        final byte[] fakeModelOutput;

        Frame(ModelMetadata m, long seed) {
            Random rnd = new Random(seed);
            rowStride = W * 4 + 16; // padded rows, as camera planes often are
            rgbaPlane = ByteBuffer.allocateDirect(rowStride * H);
            for (int i = 0; i < rowStride * H; i++) rgbaPlane.put(i, (byte) rnd.nextInt(256));
            for (int i = 0; i < background.length; i++) background[i] = rnd.nextInt(256);
            fakeModelOutput = new byte[m.outputBytes()];
            ByteBuffer b = ByteBuffer.wrap(fakeModelOutput).order(ByteOrder.nativeOrder());
            for (int i = 0; i < m.outputHeight * m.outputWidth; i++) {
                if (m.outputDType == ModelMetadata.DType.FLOAT32) b.putFloat(i * 4, rnd.nextFloat() * 1.2f - 0.1f);
                else b.put(i, (byte) rnd.nextInt(256));
            }
        }
    }

    /** Results of one frame, as references (to check they are the same arrays next time). */
    private static final class Results {
        ByteBuffer input;
        float[] plainAlpha;
        float[] guidedAlpha;
        int[] blur;
        int[] color;
        int[] image;
        int[] cutout;
        long checksum;
    }

    /** One camera frame through the core, as CameraActivity runs it. Must not allocate after the first frame. */
    private static void runFrame(FrameProcessor proc, Frame f, GuidedFilter gf, Results r) {
        ImageOps.rgbaToArgbInto(f.rgbaPlane, f.rowStride, 4, W, H, f.raw);
        f.orientation.applyInto(f.raw, W, H, f.upright);
        int w = f.orientation.outWidth(W, H);
        int h = f.orientation.outHeight(W, H);
        r.input = proc.metadata.takesPrior ? proc.prepareFrame(f.upright, w, h) : proc.prepare(f.upright, w, h);
        ByteBuffer out = proc.output(); // "inference": the interpreter writes the output tensor
        for (int i = 0; i < f.fakeModelOutput.length; i++) out.put(i, f.fakeModelOutput[i]);
        proc.setGuidedFilter(null);
        r.plainAlpha = proc.alpha();
        r.blur = proc.overBlur();
        r.checksum = r.blur[7] + r.blur[r.blur.length - 1];
        r.color = proc.overColor(0x00B140);
        r.checksum += r.color[11];
        proc.setGuidedFilter(gf);
        r.guidedAlpha = proc.alpha();
        r.image = proc.overRgb(f.background);
        r.checksum += r.image[5];
        r.cutout = proc.cutout();
        r.checksum += r.cutout[r.cutout.length / 2];
    }

    private static ModelMetadata meta(String inputExtra, String outputExtra) {
        return ModelMetadata.parse(ModelMetadataTest.sidecar(inputExtra, outputExtra)
                .replace("\"height\": 4, \"width\": 6", "\"height\": 24, \"width\": 20"));
    }

    private static ModelMetadata[] models() {
        return new ModelMetadata[] {
            meta(ModelMetadataTest.FLOAT_IN, ModelMetadataTest.FLOAT_OUT),
            meta(", \"dtype\": \"uint8\", \"normalization_in_model\": true, \"quantization\": null",
                    ", \"dtype\": \"int8\", \"quantization\": [0.00390625, -128]"),
            priorMeta(", \"dtype\": \"uint8\", \"normalization_in_model\": true, \"quantization\": {\"scale\": 1.0, \"zero_point\": 0}",
                    ", \"dtype\": \"uint8\", \"quantization\": [0.00390625, 0]"),
        };
    }

    /** A prior-frame model ("RGB+prior"): camera frames feed it the previous frame's alpha. */
    private static ModelMetadata priorMeta(String inputExtra, String outputExtra) {
        return ModelMetadata.parse(ModelMetadataTest.priorSidecar(inputExtra, outputExtra)
                .replace("\"height\": 4, \"width\": 6", "\"height\": 24, \"width\": 20"));
    }

    /** Frames measured after the first. */
    private static final int FRAMES = 40;
    /**
     * Frames (of {@link #FRAMES}) allowed a few bytes of the JVM's own: when HotSpot's tiered
     * JIT moves a method to another tier it may resolve a constant or link a class lazily, a
     * one-off allocation on this thread at an unpredictable frame (seen: 88 or 256 bytes, in
     * at most three frames of 40, never with -Xint or a single compiler). An allocation of ours
     * would recur in every frame.
     */
    private static final int JIT_NOISE_FRAMES = 6;
    private static final long JIT_NOISE_BYTES = 4096;

    @Test
    public void framesAfterTheFirstAllocateNothingInTheCore() {
        java.lang.management.ThreadMXBean std = ManagementFactory.getThreadMXBean();
        Assume.assumeTrue("no per-thread allocation counter on this JVM", std instanceof com.sun.management.ThreadMXBean);
        com.sun.management.ThreadMXBean bean = (com.sun.management.ThreadMXBean) std;
        Assume.assumeTrue(bean.isThreadAllocatedMemorySupported());
        bean.setThreadAllocatedMemoryEnabled(true);
        GuidedFilter gf = new GuidedFilter(2, 1e-3);
        long[] perFrame = new long[FRAMES];
        for (ModelMetadata m : models()) {
            FrameProcessor proc = new FrameProcessor(m);
            Frame f = new Frame(m, 42);
            Results first = new Results();
            Results later = new Results();
            long start = bean.getCurrentThreadAllocatedBytes();
            runFrame(proc, f, gf, first);
            long firstBytes = bean.getCurrentThreadAllocatedBytes() - start;
            long c0 = bean.getCurrentThreadAllocatedBytes();
            long c1 = bean.getCurrentThreadAllocatedBytes();
            long counterCost = c1 - c0;
            for (int k = 0; k < FRAMES; k++) {
                long before = bean.getCurrentThreadAllocatedBytes();
                runFrame(proc, f, gf, later);
                perFrame[k] = bean.getCurrentThreadAllocatedBytes() - before - counterCost;
            }
            int zeroFrames = 0;
            long total = 0;
            long max = 0;
            for (long b : perFrame) {
                if (b == 0) zeroFrames++;
                total += b;
                max = Math.max(max, b);
            }
            String model = m.inputDType.jsonName + "->" + m.outputDType.jsonName + (m.takesPrior ? "+prior" : "");
            System.out.println("FRAME_ALLOCATION model=" + model + " first_frame_bytes=" + firstBytes
                    + " second_frame_bytes=" + perFrame[0] + " frames=" + FRAMES + " zero_frames=" + zeroFrames
                    + " total_bytes=" + total + " max_frame_bytes=" + max + " counter_cost=" + counterCost);
            assertTrue(model + ": the first frame allocates the buffers", firstBytes > 0);
            assertTrue(model + ": only " + zeroFrames + " of " + FRAMES + " frames after the first allocated nothing: "
                    + java.util.Arrays.toString(perFrame), zeroFrames >= FRAMES - JIT_NOISE_FRAMES);
            assertTrue(model + ": " + total + " bytes over " + FRAMES + " frames", total <= JIT_NOISE_BYTES);
            assertSame(first.input, later.input);
            assertSame(first.plainAlpha, later.plainAlpha);
            assertSame(first.guidedAlpha, later.guidedAlpha);
            assertSame(first.blur, later.blur);
            assertSame(first.cutout, later.cutout);
            assertEquals(first.checksum, later.checksum);
        }
    }

    @Test
    public void processorMatchesTheOneOffFunctionsAcrossSizeChanges() {
        GuidedFilter gf = GuidedFilter.defaults();
        for (ModelMetadata m : models()) {
            FrameProcessor proc = new FrameProcessor(m);
            Random rnd = new Random(7);
            int[][] sizes = {{64, 48}, {48, 64}, {33, 17}, {64, 48}};
            float[] prevAlpha = null;
            for (int[] s : sizes) {
                int w = s[0];
                int h = s[1];
                int[] argb = new int[w * h];
                for (int i = 0; i < argb.length; i++) argb[i] = rnd.nextInt();
                ByteBuffer in = proc.prepare(argb, w, h);
                ByteBuffer want = ModelInput.create(argb, w, h, m);
                for (int i = 0; i < m.inputBytes(); i++) {
                    if (m.inputDType == ModelMetadata.DType.FLOAT32) {
                        if (i % 4 == 0) assertEquals(Float.floatToIntBits(want.getFloat(i)), Float.floatToIntBits(in.getFloat(i)));
                    } else {
                        assertEquals(want.get(i), in.get(i));
                    }
                }
                ByteBuffer out = proc.output();
                for (int i = 0; i < m.outputBytes(); i++) out.put(i, (byte) rnd.nextInt(256));
                if (m.outputDType == ModelMetadata.DType.FLOAT32) { // keep floats finite and near [0, 1]
                    for (int i = 0; i < m.outputBytes(); i += 4) out.putFloat(i, rnd.nextFloat());
                }
                ByteBuffer heapOut = ByteBuffer.allocate(m.outputBytes()).order(out.order());
                for (int i = 0; i < m.outputBytes(); i++) heapOut.put(i, out.get(i));
                proc.setGuidedFilter(null);
                float[] alpha = proc.alpha();
                assertArrayEquals(ModelOutput.toAlpha(heapOut, m, w, h), alpha, 0f);
                if (prevAlpha != null && prevAlpha.length == alpha.length) assertSame("same pixel count: arrays reused", prevAlpha, alpha);
                if (prevAlpha != null && prevAlpha.length != alpha.length) assertNotSame(prevAlpha, alpha);
                prevAlpha = alpha;
                assertArrayEquals(Compositor.overBlur(argb, alpha, w, h), proc.overBlur());
                assertArrayEquals(Compositor.overColor(argb, alpha, w, h, 0x123456), proc.overColor(0x123456));
                assertArrayEquals(Compositor.cutout(argb, alpha, w, h), proc.cutout());
                proc.setGuidedFilter(gf);
                assertArrayEquals(ModelOutput.toAlphaGuided(heapOut, m, argb, w, h, gf), proc.alpha(), 0f);
            }
        }
    }

    /** Channel 3 of a float32 prior-frame input tensor. */
    private static float[] priorChannel(ByteBuffer in, ModelMetadata m) {
        float[] p = new float[m.inputHeight * m.inputWidth];
        for (int i = 0; i < p.length; i++) p[i] = in.getFloat((i * 4 + 3) * 4);
        return p;
    }

    @Test
    public void cameraFramesFeedThePreviousAlphaAndPhotosZeros() {
        ModelMetadata m = priorMeta(ModelMetadataTest.FLOAT_IN, ModelMetadataTest.FLOAT_OUT);
        int n = m.inputHeight * m.inputWidth;
        FrameProcessor proc = new FrameProcessor(m);
        Random rnd = new Random(3);
        int[] frame = new int[W * H];
        for (int i = 0; i < frame.length; i++) frame[i] = rnd.nextInt();
        float[] zeros = new float[n];
        float[] out1 = new float[n];
        for (int i = 0; i < n; i++) out1[i] = rnd.nextFloat() * 1.4f - 0.2f; // spills outside [0, 1]: clipped
        float[] clipped = new float[n];
        for (int i = 0; i < n; i++) clipped[i] = Math.min(Math.max(out1[i], 0f), 1f);

        // first frame of a stream: zeros; its alpha becomes the next frame's prior
        assertArrayEquals(zeros, priorChannel(proc.prepareFrame(frame, W, H), m), 0f);
        for (int i = 0; i < n; i++) proc.output().putFloat(i * 4, out1[i]);
        proc.alpha();
        assertArrayEquals(clipped, proc.prior(), 0f);
        ByteBuffer second = proc.prepareFrame(frame, W, H);
        assertArrayEquals(clipped, priorChannel(second, m), 0f);
        assertTrue(proc.fedPrior());
        // the same as the one-off function given that prior
        ByteBuffer want = ModelInput.create(frame, W, H, clipped, m);
        for (int i = 0; i < m.inputBytes(); i += 4) assertEquals(want.getFloat(i), second.getFloat(i), 0f);
        // no alpha computed for the second frame: the third gets zeros (never a stale alpha)
        assertTrue(proc.prior() == null);
        assertArrayEquals(zeros, priorChannel(proc.prepareFrame(frame, W, H), m), 0f);

        // a photo in between: zeros, and the stream starts again
        proc.alpha();
        assertTrue(proc.prior() != null);
        assertArrayEquals(zeros, priorChannel(proc.prepare(frame, W, H), m), 0f);
        assertTrue(!proc.fedPrior());
        proc.alpha();
        assertArrayEquals(zeros, priorChannel(proc.prepareFrame(frame, W, H), m), 0f);

        // a reset (another camera): zeros
        proc.alpha();
        proc.resetStream();
        assertArrayEquals(zeros, priorChannel(proc.prepareFrame(frame, W, H), m), 0f);

        // a new resolution (rotated frames): zeros
        proc.alpha();
        assertTrue(proc.prior() != null);
        assertArrayEquals(zeros, priorChannel(proc.prepareFrame(frame, H, W), m), 0f);
        proc.alpha();
        assertArrayEquals(clipped, priorChannel(proc.prepareFrame(frame, H, W), m), 0f); // output unchanged: same alpha

        // a model without the prior channel: prepareFrame is prepare
        ModelMetadata rgba = meta(ModelMetadataTest.FLOAT_IN, ModelMetadataTest.FLOAT_OUT);
        FrameProcessor plain = new FrameProcessor(rgba);
        ByteBuffer a = plain.prepareFrame(frame, W, H);
        plain.alpha();
        assertTrue(plain.prior() == null);
        ByteBuffer b = ModelInput.create(frame, W, H, rgba);
        a = plain.prepareFrame(frame, W, H);
        for (int i = 0; i < rgba.inputBytes(); i += 4) assertEquals(b.getFloat(i), a.getFloat(i), 0f);
    }

    @Test
    public void rgbaPlaneWithPaddedRowsToArgb() {
        int w = 3;
        int h = 2;
        int rowStride = 16;
        ByteBuffer b = ByteBuffer.allocate(rowStride * h);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int p = y * rowStride + x * 4;
                b.put(p, (byte) (10 * y + x)).put(p + 1, (byte) 200).put(p + 2, (byte) (255 - x)).put(p + 3, (byte) 0x80);
            }
        }
        b.position(5); // absolute reads: the position does not matter and is kept
        int[] out = new int[w * h];
        ImageOps.rgbaToArgbInto(b, rowStride, 4, w, h, out);
        assertEquals(5, b.position());
        assertEquals(0x80_00_C8_FF, out[0]);
        assertEquals(0x80_0C_C8_FD, out[5]); // y=1, x=2: R=12, G=200, B=253
    }

    @Test
    public void cameraOrientationIsRotateThenMirror() {
        int w = 5;
        int h = 3;
        int[] src = new int[w * h];
        for (int i = 0; i < src.length; i++) src[i] = i;
        for (int rot : new int[] {0, 90, 180, 270}) {
            // reference: rotate clockwise by rot (no mirror), then mirror left-right by hand
            Orientation r = new Orientation(rot, false);
            int[] rotated = r.apply(src, w, h);
            int ow = r.outWidth(w, h);
            int oh = r.outHeight(w, h);
            int[] want = new int[rotated.length];
            for (int y = 0; y < oh; y++) {
                for (int x = 0; x < ow; x++) want[y * ow + x] = rotated[y * ow + (ow - 1 - x)];
            }
            Orientation cam = Orientation.forCamera(rot, true);
            assertArrayEquals("front camera, rotation " + rot, want, cam.apply(src, w, h));
            assertEquals(ow, cam.outWidth(w, h));
            assertArrayEquals("back camera, rotation " + rot, rotated, Orientation.forCamera(rot, false).apply(src, w, h));
        }
        // 90 degrees clockwise: the bottom-left pixel lands top-left
        assertEquals(src[(h - 1) * w], new Orientation(90, false).apply(src, w, h)[0]);
    }

    @Test
    public void boundedDecodeOfTheIssuesPhoto() {
        // a 4000x3000 photo decoded for a 2048 long side: subsample by 2 (2000x1500), never whole
        assertEquals(2, PhotoDecode.sampleSize(3000, 4000, 2048));
        assertArrayEquals(new int[] {1536, 2048}, PhotoDecode.boundedSize(3000, 4000, 2048));
        assertArrayEquals(new int[] {480, 640}, PhotoDecode.boundedSize(480, 640, 2048));
        try {
            PhotoDecode.sampleSize(0, 10, 10);
            throw new AssertionError("accepted a zero height");
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage().contains("height"));
        }
    }

    @Test
    public void tensorCheckReportsShapeAndQuantizationMismatches() {
        ModelMetadata m = meta(", \"dtype\": \"int8\", \"normalization_in_model\": false, \"quantization\": {\"scale\": 0.5, \"zero_point\": -3}",
                ", \"dtype\": \"uint8\", \"quantization\": [0.00390625, 0]");
        assertTrue(TensorCheck.check(m, new int[] {1, 24, 20, 3}, "int8", 0.5f, -3, 24 * 20, "uint8", 0.00390625f, 0).isEmpty());
        java.util.List<TensorCheck.Problem> p = TensorCheck.check(m, new int[] {1, 20, 24, 3}, "int8", 0.25f, -3, 24 * 21, "uint8", 0.00390625f, 1);
        assertEquals(4, p.size());
        assertEquals("input", p.get(0).key);
        assertEquals("output", p.get(1).key);
        assertEquals("input.quantization", p.get(2).key);
        assertTrue(p.get(2).message, p.get(2).message.contains("scale 0.5") && p.get(2).message.contains("scale 0.25"));
        assertEquals("output.quantization", p.get(3).key);
    }
}
