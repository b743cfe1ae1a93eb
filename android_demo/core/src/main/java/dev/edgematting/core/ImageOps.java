package dev.edgematting.core;

import java.nio.ByteBuffer;

/**
 * Java twin of {@code edgematting/imageops.py}. Every function performs the same float32
 * operations in the same order as the numpy reference (Java float arithmetic is strict
 * IEEE 754 and never fused), so results agree bit for bit; the JUnit golden tests check it.
 *
 * <p>Images are interleaved float arrays, row-major {@code [y][x][c]}. Photos come from
 * Android's {@code Bitmap.getPixels}: one int per pixel, packed 0xAARRGGBB.
 *
 * <p>Every operation exists in two forms: one that returns a new array (simple, for one-off
 * use and tests) and one that writes into arrays the caller keeps ({@code ...Into}), which
 * {@link FrameProcessor} uses so that a stream of camera frames allocates nothing per frame.
 */
public final class ImageOps {
    private ImageOps() {}

    /** Sampling positions of one axis: out[j] = in[i0[j]] * (1 - w1[j]) + in[i1[j]] * w1[j]. */
    public static final class AxisWeights {
        public final int inSize;
        public final int outSize;
        public final int[] i0;
        public final int[] i1;
        public final float[] w1;

        AxisWeights(int inSize, int outSize, int[] i0, int[] i1, float[] w1) {
            this.inSize = inSize;
            this.outSize = outSize;
            this.i0 = i0;
            this.i1 = i1;
            this.w1 = w1;
        }

        /** true when these are the weights of {@code inSize -> outSize}. */
        public boolean isFor(int in, int out) {
            return inSize == in && outSize == out;
        }
    }

    /** imageops._axis_weights: half-pixel centres, edges clamped (tf.image.resize bilinear). */
    public static AxisWeights axisWeights(int inSize, int outSize) {
        if (inSize <= 0 || outSize <= 0) throw new IllegalArgumentException("sizes must be positive: " + inSize + " -> " + outSize);
        float scale = (float) inSize / (float) outSize;
        int[] i0 = new int[outSize];
        int[] i1 = new int[outSize];
        float[] w1 = new float[outSize];
        for (int j = 0; j < outSize; j++) {
            float src = ((float) j + 0.5f) * scale - 0.5f;
            src = Math.max(src, 0.0f);
            int a = (int) Math.floor(src);
            a = Math.min(a, inSize - 1);
            i0[j] = a;
            i1[j] = Math.min(a + 1, inSize - 1);
            w1[j] = src - (float) a;
        }
        return new AxisWeights(inSize, outSize, i0, i1, w1);
    }

    /** {@code cached} when it already holds the weights of {@code inSize -> outSize}, else new ones. */
    public static AxisWeights axisWeights(AxisWeights cached, int inSize, int outSize) {
        return cached != null && cached.isFor(inSize, outSize) ? cached : axisWeights(inSize, outSize);
    }

    /**
     * imageops.resize_bilinear on an interleaved HxWxC float image: columns of the two
     * source rows first ({@code top = a*(1-wx) + b*wx}), then rows
     * ({@code out = top*(1-wy) + bottom*wy}).
     */
    public static float[] resizeBilinear(float[] src, int h, int w, int c, int outH, int outW) {
        float[] out = new float[outH * outW * c];
        resizeBilinearInto(src, h, w, c, axisWeights(h, outH), axisWeights(w, outW), out);
        return out;
    }

    /** {@link #resizeBilinear} into {@code dst} (outH * outW * c values), with precomputed weights. */
    public static void resizeBilinearInto(float[] src, int h, int w, int c, AxisWeights ay, AxisWeights ax, float[] dst) {
        checkLength(src, h * w * c, "src");
        checkWeights(ay, h, "rows");
        checkWeights(ax, w, "columns");
        int outH = ay.outSize;
        int outW = ax.outSize;
        checkLength(dst, outH * outW * c, "dst");
        for (int y = 0; y < outH; y++) {
            int r0 = ay.i0[y] * w * c;
            int r1 = ay.i1[y] * w * c;
            float wy = ay.w1[y];
            float omwy = 1.0f - wy;
            int o = y * outW * c;
            for (int x = 0; x < outW; x++) {
                int c0 = ax.i0[x] * c;
                int c1 = ax.i1[x] * c;
                float wx = ax.w1[x];
                float omwx = 1.0f - wx;
                for (int k = 0; k < c; k++) {
                    float top = src[r0 + c0 + k] * omwx + src[r0 + c1 + k] * wx;
                    float bot = src[r1 + c0 + k] * omwx + src[r1 + c1 + k] * wx;
                    dst[o++] = top * omwy + bot * wy;
                }
            }
        }
    }

    /**
     * {@code resizeBilinear(argbToRgb(argb), ...)} without the full-size float copy of the
     * photo: reads the colours straight from the ARGB ints (the same float values, so the
     * same result bit for bit). {@code dst} holds outH * outW * 3 floats.
     */
    public static void resizeArgbToRgbInto(int[] argb, int h, int w, AxisWeights ay, AxisWeights ax, float[] dst) {
        checkLength(argb, h * w, "argb");
        checkWeights(ay, h, "rows");
        checkWeights(ax, w, "columns");
        int outH = ay.outSize;
        int outW = ax.outSize;
        checkLength(dst, outH * outW * 3, "dst");
        for (int y = 0; y < outH; y++) {
            int r0 = ay.i0[y] * w;
            int r1 = ay.i1[y] * w;
            float wy = ay.w1[y];
            float omwy = 1.0f - wy;
            int o = y * outW * 3;
            for (int x = 0; x < outW; x++) {
                int a = argb[r0 + ax.i0[x]];
                int b = argb[r0 + ax.i1[x]];
                int c = argb[r1 + ax.i0[x]];
                int d = argb[r1 + ax.i1[x]];
                float wx = ax.w1[x];
                float omwx = 1.0f - wx;
                for (int shift = 16; shift >= 0; shift -= 8) {
                    float top = (float) ((a >> shift) & 0xFF) * omwx + (float) ((b >> shift) & 0xFF) * wx;
                    float bot = (float) ((c >> shift) & 0xFF) * omwx + (float) ((d >> shift) & 0xFF) * wx;
                    dst[o++] = top * omwy + bot * wy;
                }
            }
        }
    }

    /** imageops.round_to_uint8 for one value: floor(x + 0.5) clipped to [0, 255]. */
    public static int roundToUint8(float x) {
        float r = (float) Math.floor(x + 0.5f);
        if (!(r >= 0f)) return 0; // also maps NaN to 0 (numpy casts NaN unpredictably; never produced here)
        if (r > 255f) return 255;
        return (int) r;
    }

    /** ARGB pixels (0xAARRGGBB, Bitmap.getPixels) -> interleaved RGB floats in [0, 255]; alpha is ignored. */
    public static float[] argbToRgb(int[] argb, int width, int height) {
        float[] rgb = new float[width * height * 3];
        argbToRgbInto(argb, width, height, rgb);
        return rgb;
    }

    /** {@link #argbToRgb} into {@code dst} (width * height * 3 floats). */
    public static void argbToRgbInto(int[] argb, int width, int height, float[] dst) {
        checkLength(argb, width * height, "argb");
        checkLength(dst, width * height * 3, "dst");
        for (int i = 0, o = 0; i < width * height; i++) {
            int p = argb[i];
            dst[o++] = (float) ((p >> 16) & 0xFF);
            dst[o++] = (float) ((p >> 8) & 0xFF);
            dst[o++] = (float) (p & 0xFF);
        }
    }

    /**
     * RGBA_8888 bytes (CameraX {@code ImageProxy} plane 0 with OUTPUT_IMAGE_FORMAT_RGBA_8888:
     * R, G, B, A per pixel, rows {@code rowStride} bytes apart, pixels {@code pixelStride}
     * bytes apart) -> ARGB ints in {@code dst} (width * height). Absolute reads: the buffer's
     * position is not changed.
     */
    public static void rgbaToArgbInto(ByteBuffer src, int rowStride, int pixelStride, int width, int height, int[] dst) {
        if (pixelStride < 4 || rowStride < width * pixelStride) {
            throw new IllegalArgumentException("RGBA plane with row stride " + rowStride + ", pixel stride " + pixelStride
                    + " cannot hold " + width + " pixels per row");
        }
        checkLength(dst, width * height, "dst");
        long need = (long) (height - 1) * rowStride + (long) (width - 1) * pixelStride + 4;
        if (src.limit() < need) throw new IllegalArgumentException("RGBA plane has " + src.limit() + " bytes, needs " + need);
        int o = 0;
        for (int y = 0; y < height; y++) {
            int p = y * rowStride;
            for (int x = 0; x < width; x++, p += pixelStride) {
                dst[o++] = ((src.get(p + 3) & 0xFF) << 24) | ((src.get(p) & 0xFF) << 16) | ((src.get(p + 1) & 0xFF) << 8) | (src.get(p + 2) & 0xFF);
            }
        }
    }

    /** Packs opaque ARGB ints from 0..255 components. */
    public static int argb(int a, int r, int g, int b) {
        return (a << 24) | (r << 16) | (g << 8) | b;
    }

    /**
     * imageops.box_blur: separable box blur with edge clamping, {@code passes} times, axis 0
     * (rows) then axis 1 (columns) in each pass. Running sums are accumulated in double in
     * the same order as numpy's float64 cumsum, then {@code (hi - lo) / k} is cast to float.
     */
    public static float[] boxBlur(float[] img, int h, int w, int c, int radius, int passes) {
        checkLength(img, h * w * c, "img");
        BlurBuffers b = new BlurBuffers();
        b.ensure(h, w, c, radius);
        return boxBlurInto(img, h, w, c, radius, passes, b).clone();
    }

    /** Work arrays of {@link #boxBlurInto}, kept across frames of the same size. */
    public static final class BlurBuffers {
        float[] a = new float[0];
        float[] b = new float[0];
        double[] line = new double[0];

        /** Grows the arrays (only) when an h x w x c image with this radius needs more. */
        public void ensure(int h, int w, int c, int radius) {
            int n = h * w * c;
            if (a.length != n) {
                a = new float[n];
                b = new float[n];
            }
            int lineLen = Math.max(h, w) + 2 * Math.max(radius, 0) + 1;
            if (line.length < lineLen) line = new double[lineLen];
        }
    }

    /**
     * {@link #boxBlur} with the caller's work arrays (sized by {@link BlurBuffers#ensure});
     * returns the array of {@code buf} that holds the result (valid until the next call).
     */
    public static float[] boxBlurInto(float[] img, int h, int w, int c, int radius, int passes, BlurBuffers buf) {
        checkLength(img, h * w * c, "img");
        buf.ensure(h, w, c, radius);
        float[] x = buf.a;
        float[] tmp = buf.b;
        System.arraycopy(img, 0, x, 0, img.length);
        if (radius <= 0) return x;
        int k = 2 * radius + 1;
        double[] cs = buf.line;
        for (int pass = 0; pass < passes; pass++) {
            // axis 0: along y, for every (x, channel)
            for (int xx = 0; xx < w; xx++) {
                for (int ch = 0; ch < c; ch++) {
                    blurLine(x, tmp, xx * c + ch, w * c, h, radius, k, cs);
                }
            }
            float[] swap = x;
            x = tmp;
            tmp = swap;
            // axis 1: along x, for every (y, channel)
            for (int yy = 0; yy < h; yy++) {
                for (int ch = 0; ch < c; ch++) {
                    blurLine(x, tmp, yy * w * c + ch, c, w, radius, k, cs);
                }
            }
            swap = x;
            x = tmp;
            tmp = swap;
        }
        return x;
    }

    /** One line of one pass: padded = edge-pad(radius+1 before, radius after), cumsum, windowed difference. */
    private static void blurLine(float[] in, float[] out, int base, int stride, int n, int radius, int k, double[] cs) {
        int padded = n + 2 * radius + 1;
        double s = 0.0;
        for (int p = 0; p < padded; p++) {
            int src = p - (radius + 1);
            if (src < 0) src = 0;
            else if (src > n - 1) src = n - 1;
            s += (double) in[base + src * stride];
            cs[p] = s;
        }
        for (int i = 0; i < n; i++) {
            out[base + i * stride] = (float) ((cs[k + i] - cs[i]) / k);
        }
    }

    /** imageops.default_blur_radius: max(1, round(min(h, w) / 40)), Python's round (half to even). */
    public static int defaultBlurRadius(int h, int w) {
        return Math.max(1, (int) Math.rint(Math.min(h, w) / 40.0));
    }

    /**
     * imageops.box_mean: mean over the (2r+1)^2 window clipped to the image (divided by the
     * number of in-image pixels), axis 0 then axis 1, each with double running sums
     * {@code c[0] = 0, c[k] = c[k-1] + x[k-1]} and {@code (float) ((c[hi] - c[lo]) / (hi - lo))}.
     * {@code tmp} holds the intermediate (h * w floats); {@code dst} may be {@code src};
     * {@code line} holds at least max(h, w) + 1 doubles.
     */
    public static void boxMeanInto(float[] src, int h, int w, int radius, float[] tmp, float[] dst, double[] line) {
        checkLength(src, h * w, "src");
        checkLength(tmp, h * w, "tmp");
        checkLength(dst, h * w, "dst");
        if (line.length < Math.max(h, w) + 1) throw new IllegalArgumentException("line buffer too short");
        for (int x = 0; x < w; x++) boxMeanLine(src, tmp, x, w, h, radius, line);
        for (int y = 0; y < h; y++) boxMeanLine(tmp, dst, y * w, 1, w, radius, line);
    }

    private static void boxMeanLine(float[] in, float[] out, int base, int stride, int n, int r, double[] cs) {
        double s = 0.0;
        cs[0] = 0.0;
        for (int i = 0; i < n; i++) {
            s += (double) in[base + i * stride];
            cs[i + 1] = s;
        }
        for (int i = 0; i < n; i++) {
            int lo = Math.max(i - r, 0);
            int hi = Math.min(i + r, n - 1) + 1;
            out[base + i * stride] = (float) ((cs[hi] - cs[lo]) / (double) (hi - lo));
        }
    }

    /** {@link #boxMeanInto} returning a new array. */
    public static float[] boxMean(float[] src, int h, int w, int radius) {
        float[] out = new float[h * w];
        boxMeanInto(src, h, w, radius, new float[h * w], out, new double[Math.max(h, w) + 1]);
        return out;
    }

    static final float LUMA_R = (float) 0.299;
    static final float LUMA_G = (float) 0.587;
    static final float LUMA_B = (float) 0.114;

    /** imageops.luminance01 of one pixel: ((0.299 R + 0.587 G) + 0.114 B) / 255 in float (the guided filter's guide). */
    public static float luminance(float r, float g, float b) {
        return luma(r, g, b) / 255.0f;
    }

    /** imageops.luminance of one pixel, in 0..255 units: (0.299 R + 0.587 G) + 0.114 B in float (the comic outlines). */
    public static float luma(float r, float g, float b) {
        return LUMA_R * r + LUMA_G * g + LUMA_B * b;
    }

    static void checkWeights(AxisWeights a, int inSize, String what) {
        if (a == null || a.inSize != inSize) {
            throw new IllegalArgumentException("resize weights for " + what + " are for " + (a == null ? "nothing" : a.inSize + " pixels")
                    + ", the image has " + inSize);
        }
    }

    static void checkLength(float[] a, int n, String what) {
        if (a == null || a.length != n) {
            throw new IllegalArgumentException(what + " has " + (a == null ? "no" : a.length) + " values, expected " + n);
        }
    }

    static void checkLength(int[] a, int n, String what) {
        if (a == null || a.length != n) {
            throw new IllegalArgumentException(what + " has " + (a == null ? "no" : a.length) + " values, expected " + n);
        }
    }
}
