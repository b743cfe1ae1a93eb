package dev.edgematting.core;

/**
 * Decoding a phone photo with a bounded size: the Java twin of
 * {@code imageops.decode_sample_size} and {@code imageops.bounded_size}. The app decodes
 * with {@code BitmapFactory.Options.inSampleSize = sampleSize(...)} before Android 9 and
 * {@code ImageDecoder.setTargetSize(boundedSize(...))} from Android 9 on, so a 4000x3000
 * photo never lands in memory whole.
 */
public final class PhotoDecode {
    private PhotoDecode() {}

    /**
     * The smallest power of two {@code s} with {@code ceil(max(h, w) / s) <= maxSide}: decoders
     * return floor or ceil of {@code size / s}, so the decoded long side is at most maxSide.
     */
    public static int sampleSize(int height, int width, int maxSide) {
        positive(height, "height");
        positive(width, "width");
        positive(maxSide, "maxSide");
        long longSide = Math.max(height, width);
        int s = 1;
        while ((longSide + s - 1) / s > maxSide) s *= 2;
        return s;
    }

    /**
     * {height, width} scaled so the long side is exactly maxSide when it is longer (aspect
     * kept, each side {@code floor(side * maxSide / long + 1/2)} in integer arithmetic, at
     * least 1); unchanged otherwise.
     */
    public static int[] boundedSize(int height, int width, int maxSide) {
        positive(height, "height");
        positive(width, "width");
        positive(maxSide, "maxSide");
        long longSide = Math.max(height, width);
        if (longSide <= maxSide) return new int[] {height, width};
        long h = (2L * height * maxSide + longSide) / (2L * longSide);
        long w = (2L * width * maxSide + longSide) / (2L * longSide);
        return new int[] {(int) Math.max(1, h), (int) Math.max(1, w)};
    }

    private static void positive(int v, String what) {
        if (v <= 0) throw new IllegalArgumentException(what + " must be positive, got " + v);
    }
}
