package dev.edgematting.core;

/**
 * The comic effect: the Java twin of {@code imageops.comic} and its parts
 * ({@code edge_preserving_smooth}, {@code quantize_levels}, {@code outline_strength},
 * {@code comic_style}), bit for bit (the JUnit goldens check it). Edge-preserving smoothing,
 * per-channel colour quantization and dark outlines, blended onto the person by alpha.
 *
 * <p>Like the reference, every step is float arithmetic in a fixed order with only
 * {@code + - * / floor sqrt} (each correctly rounded; a double square root of a float rounded
 * back to float is the correctly rounded float square root), so Java reproduces numpy exactly.
 * Images are interleaved RGB floats in 0..255, row-major {@code [y][x][c]}; edges are clamped.
 */
public final class Comic {
    private Comic() {}

    /** imageops.COMIC_RADIUS: 3x3 window. */
    public static final int RADIUS = 1;
    /** imageops.COMIC_PASSES. */
    public static final int PASSES = 3;
    /** imageops.COMIC_SIGMA_RANGE: neighbours this far apart in RGB (pixel levels) get half weight. */
    public static final double SIGMA_RANGE = 20.0;
    /** imageops.COMIC_SIGMA_SPACE: a neighbour at this distance (pixels) gets half weight. */
    public static final double SIGMA_SPACE = 1.0;
    /** imageops.COMIC_LEVELS: colour levels per channel (6: steps of 51). */
    public static final int LEVELS = 6;
    /** imageops.COMIC_EDGE_LOW / COMIC_EDGE_HIGH: Sobel magnitudes where outlines start / are full. */
    public static final double EDGE_LOW = 40.0;
    public static final double EDGE_HIGH = 140.0;
    /** imageops.COMIC_INK: a full outline multiplies the colour by (1 - ink). */
    public static final double INK = 0.85;

    /** imageops.edge_preserving_smooth with the defaults (RADIUS, PASSES, SIGMA_RANGE, SIGMA_SPACE). */
    public static float[] edgePreservingSmooth(float[] rgb, int h, int w) {
        return edgePreservingSmooth(rgb, h, w, RADIUS, PASSES, SIGMA_RANGE, SIGMA_SPACE);
    }

    /**
     * imageops.edge_preserving_smooth: a bilateral filter with a rational kernel, {@code passes}
     * times; returns a new h*w*3 array. For each pixel p and each neighbour n of the
     * (2r+1)^2 window (edges clamped; dy outer, dx inner, both from -r to r):
     * {@code d2 = (dR*dR + dG*dG) + dB*dB} ({@code d = n - p}),
     * {@code wgt = 1 / ((1 + d2 * (1/sr^2)) + (dy^2 + dx^2) * (1/ss^2))},
     * {@code num += wgt * n}, {@code den += wgt}; then {@code out = num / den}.
     * sigmaRange and sigmaSpace are rounded to float, as numpy's {@code float32(...)}.
     */
    public static float[] edgePreservingSmooth(float[] rgb, int h, int w, int radius, int passes, double sigmaRange, double sigmaSpace) {
        ImageOps.checkLength(rgb, h * w * 3, "rgb");
        float[] x = rgb.clone();
        return smooth(x, new float[x.length], h, w, radius, passes, sigmaRange, sigmaSpace);
    }

    /** Smooths {@code x} (overwritten) using {@code spare} (same length); returns whichever of the two holds the result. */
    private static float[] smooth(float[] x, float[] spare, int h, int w, int radius, int passes, double sigmaRange, double sigmaSpace) {
        if (radius < 0) throw new IllegalArgumentException("comic smoothing radius must be >= 0, got " + radius);
        if (passes < 0) throw new IllegalArgumentException("comic smoothing passes must be >= 0, got " + passes);
        float sr = (float) sigmaRange;
        float ss = (float) sigmaSpace;
        if (!(sr > 0f) || !Float.isFinite(sr) || !(ss > 0f) || !Float.isFinite(ss)) {
            throw new IllegalArgumentException("comic smoothing sigmas must be positive finite numbers, got " + sigmaRange + ", " + sigmaSpace);
        }
        float invR = 1.0f / (sr * sr);
        float invS = 1.0f / (ss * ss);
        int r = radius;
        int taps = (2 * r + 1) * (2 * r + 1);
        int[] tapDy = new int[taps];
        int[] tapDx = new int[taps];
        float[] tapWs = new float[taps];
        for (int dy = -r, t = 0; dy <= r; dy++) {
            for (int dx = -r; dx <= r; dx++, t++) {
                tapDy[t] = dy;
                tapDx[t] = dx;
                tapWs[t] = (float) (dy * dy + dx * dx) * invS;
            }
        }
        float[] nx = spare;
        for (int pass = 0; pass < passes; pass++) {
            for (int y = 0; y < h; y++) {
                for (int xx = 0; xx < w; xx++) {
                    int p = (y * w + xx) * 3;
                    float pr = x[p];
                    float pg = x[p + 1];
                    float pb = x[p + 2];
                    float nr = 0.0f;
                    float ng = 0.0f;
                    float nb = 0.0f;
                    float den = 0.0f;
                    for (int t = 0; t < taps; t++) {
                        int yy = Math.min(Math.max(y + tapDy[t], 0), h - 1);
                        int xn = Math.min(Math.max(xx + tapDx[t], 0), w - 1);
                        int q = (yy * w + xn) * 3;
                        float qr = x[q];
                        float qg = x[q + 1];
                        float qb = x[q + 2];
                        float dr = qr - pr;
                        float dg = qg - pg;
                        float db = qb - pb;
                        float d2 = dr * dr + dg * dg + db * db;
                        float wgt = 1.0f / ((1.0f + d2 * invR) + tapWs[t]);
                        nr = nr + wgt * qr;
                        ng = ng + wgt * qg;
                        nb = nb + wgt * qb;
                        den = den + wgt;
                    }
                    nx[p] = nr / den;
                    nx[p + 1] = ng / den;
                    nx[p + 2] = nb / den;
                }
            }
            float[] swap = x;
            x = nx;
            nx = swap;
        }
        return x;
    }

    /** imageops.quantize_levels with LEVELS. */
    public static float[] quantizeLevels(float[] img) {
        return quantizeLevels(img, LEVELS);
    }

    /**
     * imageops.quantize_levels: per value {@code floor(v / step + 0.5) * step} with
     * {@code step = 255 / (levels - 1)} in float; returns a new array.
     */
    public static float[] quantizeLevels(float[] img, int levels) {
        float[] out = new float[img.length];
        float step = quantizeStep(levels);
        for (int i = 0; i < img.length; i++) out[i] = quantize(img[i], step);
        return out;
    }

    private static float quantizeStep(int levels) {
        if (levels < 2) throw new IllegalArgumentException("comic quantization needs at least 2 levels, got " + levels);
        return 255.0f / (float) (levels - 1);
    }

    private static float quantize(float v, float step) {
        return (float) Math.floor(v / step + 0.5f) * step;
    }

    /** imageops.outline_strength with EDGE_LOW and EDGE_HIGH. */
    public static float[] outlineStrength(float[] rgb, int h, int w) {
        return outlineStrength(rgb, h, w, EDGE_LOW, EDGE_HIGH);
    }

    /**
     * imageops.outline_strength: the Sobel gradient magnitude of the luminance (0..255 units,
     * {@code (0.299 R + 0.587 G) + 0.114 B}; edges clamped) mapped to 0..1: 0 below
     * {@code low}, 1 above {@code high}, linear between ({@code (mag - low) / (high - low)}).
     * Returns a new h*w array.
     */
    public static float[] outlineStrength(float[] rgb, int h, int w, double low, double high) {
        ImageOps.checkLength(rgb, h * w * 3, "rgb");
        float[] out = new float[h * w];
        outlineInto(rgb, h, w, low, high, new float[h * w], 0, out, 0);
        return out;
    }

    /** Outline strength into {@code dst[dstOff ..]}, with the luminance in {@code lum[lumOff ..]} (h*w each; lum is scratch). */
    private static void outlineInto(float[] rgb, int h, int w, double low, double high, float[] lum, int lumOff, float[] dst, int dstOff) {
        float lo = (float) low;
        float span = (float) high - lo;
        if (!(span > 0f) || !Float.isFinite(span)) {
            throw new IllegalArgumentException("comic outline needs low < high (finite), got " + low + ", " + high);
        }
        int n = h * w;
        for (int i = 0; i < n; i++) lum[lumOff + i] = ImageOps.luma(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
        for (int y = 0; y < h; y++) {
            int ym = lumOff + Math.max(y - 1, 0) * w;
            int y0 = lumOff + y * w;
            int yp = lumOff + Math.min(y + 1, h - 1) * w;
            for (int x = 0; x < w; x++) {
                int xm = Math.max(x - 1, 0);
                int xp = Math.min(x + 1, w - 1);
                float gx = ((lum[ym + xp] + 2.0f * lum[y0 + xp]) + lum[yp + xp]) - ((lum[ym + xm] + 2.0f * lum[y0 + xm]) + lum[yp + xm]);
                float gy = ((lum[yp + xm] + 2.0f * lum[yp + x]) + lum[yp + xp]) - ((lum[ym + xm] + 2.0f * lum[ym + x]) + lum[ym + xp]);
                float mag = (float) Math.sqrt(gx * gx + gy * gy);
                float e = (mag - lo) / span;
                dst[dstOff + y * w + x] = Math.min(Math.max(e, 0.0f), 1.0f);
            }
        }
    }

    /**
     * imageops.comic_style: the whole image in comic style, a new h*w*3 array in 0..255:
     * {@code quantize_levels(s) * (1 - ink * outline_strength(s))} of {@code s = edge_preserving_smooth(rgb)}
     * (outlines from the smoothed, not yet quantized, image).
     */
    public static float[] comicStyle(float[] rgb, int h, int w) {
        ImageOps.checkLength(rgb, h * w * 3, "rgb");
        return styleInPlace(rgb.clone(), new float[rgb.length], h, w);
    }

    /** comic_style of {@code x} (overwritten), with {@code spare} (same length) as work space; returns the array holding it. */
    private static float[] styleInPlace(float[] x, float[] spare, int h, int w) {
        float[] s = smooth(x, spare, h, w, RADIUS, PASSES, SIGMA_RANGE, SIGMA_SPACE);
        float[] scratch = s == x ? spare : x; // 3*h*w floats: luminance in the first third, outline in the second
        int n = h * w;
        outlineInto(s, h, w, EDGE_LOW, EDGE_HIGH, scratch, 0, scratch, n);
        float step = quantizeStep(LEVELS);
        float ink = (float) INK;
        for (int i = 0; i < n; i++) {
            float m = 1.0f - ink * scratch[n + i];
            s[3 * i] = quantize(s[3 * i], step) * m;
            s[3 * i + 1] = quantize(s[3 * i + 1], step) * m;
            s[3 * i + 2] = quantize(s[3 * i + 2], step) * m;
        }
        return s;
    }

    /**
     * imageops.comic: the photo with the person (by alpha) in comic style, as opaque ARGB
     * ints (for Bitmap.setPixels): {@code round(alpha * comic_style(photo) + (1 - alpha) * photo)}
     * per colour, as imageops.composite. The photo's alpha byte is ignored.
     *
     * <p>Memory: two float copies of the photo (3 floats per pixel each) plus the result; no more.
     */
    public static int[] comic(int[] argb, float[] alpha, int width, int height) {
        int n = width * height;
        ImageOps.checkLength(argb, n, "photo");
        ImageOps.checkLength(alpha, n, "alpha");
        float[] style = styleInPlace(ImageOps.argbToRgb(argb, width, height), new float[n * 3], height, width);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            int p = argb[i];
            float a = alpha[i];
            float oma = 1.0f - a;
            int r = ImageOps.roundToUint8(a * style[3 * i] + oma * (float) ((p >> 16) & 0xFF));
            int g = ImageOps.roundToUint8(a * style[3 * i + 1] + oma * (float) ((p >> 8) & 0xFF));
            int b = ImageOps.roundToUint8(a * style[3 * i + 2] + oma * (float) (p & 0xFF));
            out[i] = ImageOps.argb(255, r, g, b);
        }
        return out;
    }
}
