package dev.edgematting.core;

/**
 * Java twin of {@code edgematting/imageops.py}. Every function performs the same float32
 * operations in the same order as the numpy reference (Java float arithmetic is strict
 * IEEE 754 and never fused), so results agree bit for bit; the JUnit golden tests check it.
 *
 * <p>Images are interleaved float arrays, row-major {@code [y][x][c]}. Photos come from
 * Android's {@code Bitmap.getPixels}: one int per pixel, packed 0xAARRGGBB.
 */
public final class ImageOps {
    private ImageOps() {}

    /** Sampling positions of one axis: out[j] = in[i0[j]] * (1 - w1[j]) + in[i1[j]] * w1[j]. */
    public static final class AxisWeights {
        public final int[] i0;
        public final int[] i1;
        public final float[] w1;

        AxisWeights(int[] i0, int[] i1, float[] w1) {
            this.i0 = i0;
            this.i1 = i1;
            this.w1 = w1;
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
        return new AxisWeights(i0, i1, w1);
    }

    /**
     * imageops.resize_bilinear on an interleaved HxWxC float image: columns of the two
     * source rows first ({@code top = a*(1-wx) + b*wx}), then rows
     * ({@code out = top*(1-wy) + bottom*wy}).
     */
    public static float[] resizeBilinear(float[] src, int h, int w, int c, int outH, int outW) {
        checkLength(src, h * w * c, "src");
        AxisWeights ay = axisWeights(h, outH);
        AxisWeights ax = axisWeights(w, outW);
        float[] out = new float[outH * outW * c];
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
                    out[o++] = top * omwy + bot * wy;
                }
            }
        }
        return out;
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
        checkLength(argb, width * height, "argb");
        float[] rgb = new float[width * height * 3];
        for (int i = 0, o = 0; i < width * height; i++) {
            int p = argb[i];
            rgb[o++] = (float) ((p >> 16) & 0xFF);
            rgb[o++] = (float) ((p >> 8) & 0xFF);
            rgb[o++] = (float) (p & 0xFF);
        }
        return rgb;
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
        float[] x = img.clone();
        if (radius <= 0) return x;
        int k = 2 * radius + 1;
        int maxN = Math.max(h, w);
        double[] cs = new double[maxN + 2 * radius + 1];
        float[] tmp = new float[h * w * c];
        for (int pass = 0; pass < passes; pass++) {
            // axis 0: along y, for every (x, channel)
            for (int xx = 0; xx < w; xx++) {
                for (int ch = 0; ch < c; ch++) {
                    int base = xx * c + ch;
                    int stride = w * c;
                    blurLine(x, tmp, base, stride, h, radius, k, cs);
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
