package dev.edgematting.core;

/**
 * Edge-aware upsampling of the model's alpha to the photo: the fast guided filter (He et al.
 * 2010, He &amp; Sun 2015), the Java twin of {@code imageops.guided_upsample} and
 * {@code imageops.GuidedFilter}, bit for bit (the JUnit goldens check it).
 *
 * <ol>
 *   <li>{@code p = clip(alpha_lr, 0, 1)}; guide {@code I = luminance(photo)} at photo size and
 *       {@code I_lr = luminance(photo resized to the model size)} (the model input's resize);</li>
 *   <li>at model size, with the clipped-window box mean of {@code radius}:
 *       {@code a = (box(I_lr p) - box(I_lr) box(p)) / (box(I_lr I_lr) - box(I_lr)^2 + eps)},
 *       {@code b = box(p) - a box(I_lr)}, then {@code box(a)}, {@code box(b)};</li>
 *   <li>{@code q = clip(resize(box(a)) * I + resize(box(b)), 0, 1)} at photo size (bilinear,
 *       computed per pixel without full-size intermediates).</li>
 * </ol>
 */
public final class GuidedFilter {
    /** Defaults measured on trained models (see imageops.GuidedFilter): radius 2 model pixels, eps 1e-4. */
    public static final int DEFAULT_RADIUS = 2;
    public static final double DEFAULT_EPS = 1e-4;

    public final int radius;
    /** eps rounded to float, as numpy's {@code np.float32(eps)}. */
    public final float eps;

    public GuidedFilter(int radius, double eps) {
        if (radius < 1) throw new IllegalArgumentException("guided filter radius must be >= 1, got " + radius);
        float e = (float) eps;
        if (!(e > 0f) || !Float.isFinite(e)) throw new IllegalArgumentException("guided filter eps must be a positive finite number, got " + eps);
        this.radius = radius;
        this.eps = e;
    }

    public static GuidedFilter defaults() {
        return new GuidedFilter(DEFAULT_RADIUS, DEFAULT_EPS);
    }

    @Override
    public String toString() {
        return "GuidedFilter(radius=" + radius + ", eps=" + eps + ")";
    }

    /** Work arrays at model size, kept across frames. */
    public static final class Buffers {
        int h;
        int w;
        float[] p;
        float[] guideLr;
        float[] meanI;
        float[] meanP;
        float[] corrIp;
        float[] corrIi;
        float[] tmp;
        double[] line;

        public void ensure(int h, int w) {
            if (p != null && this.h == h && this.w == w) return;
            int n = h * w;
            this.h = h;
            this.w = w;
            p = new float[n];
            guideLr = new float[n];
            meanI = new float[n];
            meanP = new float[n];
            corrIp = new float[n];
            corrIi = new float[n];
            tmp = new float[n];
            line = new double[Math.max(h, w) + 1];
        }
    }

    /**
     * imageops.guided_upsample, returning a new array.
     *
     * @param alphaLr the model's alpha at h x w (decoded, not yet clipped)
     * @param rgbLr the photo resized to h x w, interleaved float RGB (imageops.resize_bilinear)
     * @param photo the photo, ARGB ints, photoWidth x photoHeight
     */
    public float[] upsample(float[] alphaLr, int h, int w, float[] rgbLr, int[] photo, int photoWidth, int photoHeight) {
        float[] out = new float[photoWidth * photoHeight];
        upsampleInto(alphaLr, h, w, rgbLr, photo, photoWidth, photoHeight,
                ImageOps.axisWeights(h, photoHeight), ImageOps.axisWeights(w, photoWidth), new Buffers(), out);
        return out;
    }

    /** {@link #upsample} into {@code dst} (photoWidth * photoHeight), with the caller's weights (h -> photoHeight, w -> photoWidth) and buffers. */
    public void upsampleInto(float[] alphaLr, int h, int w, float[] rgbLr, int[] photo, int photoWidth, int photoHeight,
                             ImageOps.AxisWeights ay, ImageOps.AxisWeights ax, Buffers b, float[] dst) {
        int n = h * w;
        ImageOps.checkLength(alphaLr, n, "alphaLr");
        ImageOps.checkLength(rgbLr, n * 3, "rgbLr");
        ImageOps.checkLength(photo, photoWidth * photoHeight, "photo");
        ImageOps.checkLength(dst, photoWidth * photoHeight, "dst");
        ImageOps.checkWeights(ay, h, "rows");
        ImageOps.checkWeights(ax, w, "columns");
        if (ay.outSize != photoHeight || ax.outSize != photoWidth) throw new IllegalArgumentException("resize weights are not for the photo size");
        b.ensure(h, w);
        float[] p = b.p;
        float[] gi = b.guideLr;
        for (int i = 0; i < n; i++) {
            p[i] = Math.min(Math.max(alphaLr[i], 0.0f), 1.0f);
            gi[i] = ImageOps.luminance(rgbLr[3 * i], rgbLr[3 * i + 1], rgbLr[3 * i + 2]);
        }
        int r = radius;
        ImageOps.boxMeanInto(gi, h, w, r, b.tmp, b.meanI, b.line);
        ImageOps.boxMeanInto(p, h, w, r, b.tmp, b.meanP, b.line);
        float[] ip = b.corrIp;
        float[] ii = b.corrIi;
        for (int i = 0; i < n; i++) {
            ip[i] = gi[i] * p[i];
            ii[i] = gi[i] * gi[i];
        }
        ImageOps.boxMeanInto(ip, h, w, r, b.tmp, ip, b.line);
        ImageOps.boxMeanInto(ii, h, w, r, b.tmp, ii, b.line);
        // a -> p's array, b -> the guide's array (both are no longer needed)
        float[] aArr = p;
        float[] bArr = gi;
        float[] mi = b.meanI;
        float[] mp = b.meanP;
        for (int i = 0; i < n; i++) {
            float varI = ii[i] - mi[i] * mi[i];
            float covIp = ip[i] - mi[i] * mp[i];
            float a = covIp / (varI + eps);
            aArr[i] = a;
            bArr[i] = mp[i] - a * mi[i];
        }
        ImageOps.boxMeanInto(aArr, h, w, r, b.tmp, aArr, b.line);
        ImageOps.boxMeanInto(bArr, h, w, r, b.tmp, bArr, b.line);
        // photo size: bilinear resize of mean_a and mean_b (imageops.resize_bilinear's order),
        // times the full-size guide, plus, clipped.
        int o = 0;
        for (int y = 0; y < photoHeight; y++) {
            int r0 = ay.i0[y] * w;
            int r1 = ay.i1[y] * w;
            float wy = ay.w1[y];
            float omwy = 1.0f - wy;
            for (int x = 0; x < photoWidth; x++, o++) {
                int c0 = ax.i0[x];
                int c1 = ax.i1[x];
                float wx = ax.w1[x];
                float omwx = 1.0f - wx;
                float topA = aArr[r0 + c0] * omwx + aArr[r0 + c1] * wx;
                float botA = aArr[r1 + c0] * omwx + aArr[r1 + c1] * wx;
                float bigA = topA * omwy + botA * wy;
                float topB = bArr[r0 + c0] * omwx + bArr[r0 + c1] * wx;
                float botB = bArr[r1 + c0] * omwx + bArr[r1 + c1] * wx;
                float bigB = topB * omwy + botB * wy;
                int px = photo[o];
                float lum = ImageOps.luminance((float) ((px >> 16) & 0xFF), (float) ((px >> 8) & 0xFF), (float) (px & 0xFF));
                float q = bigA * lum + bigB;
                dst[o] = Math.min(Math.max(q, 0.0f), 1.0f);
            }
        }
    }
}
