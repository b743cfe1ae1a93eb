package dev.edgematting.core;

/**
 * Alpha compositing into ARGB ints (0xAARRGGBB, for Bitmap.setPixels); the Java twin of
 * {@code imageops.composite} and {@code imageops.rgba_cutout}:
 * {@code round(alpha * photo + (1 - alpha) * background)} per colour, in float32.
 * Each operation has a form that writes into the caller's {@code out} array.
 */
public final class Compositor {
    private Compositor() {}

    /** Background of one colour; {@code rgb} is 0xRRGGBB (any alpha bits are ignored). */
    public static int[] overColor(int[] photo, float[] alpha, int width, int height, int rgb) {
        int[] out = new int[width * height];
        overColorInto(photo, alpha, width, height, rgb, out);
        return out;
    }

    public static void overColorInto(int[] photo, float[] alpha, int width, int height, int rgb, int[] out) {
        float bgR = (float) ((rgb >> 16) & 0xFF);
        float bgG = (float) ((rgb >> 8) & 0xFF);
        float bgB = (float) (rgb & 0xFF);
        int n = width * height;
        ImageOps.checkLength(photo, n, "photo");
        ImageOps.checkLength(alpha, n, "alpha");
        ImageOps.checkLength(out, n, "out");
        for (int i = 0; i < n; i++) {
            int p = photo[i];
            float a = alpha[i];
            float oma = 1.0f - a;
            int r = ImageOps.roundToUint8(a * (float) ((p >> 16) & 0xFF) + oma * bgR);
            int g = ImageOps.roundToUint8(a * (float) ((p >> 8) & 0xFF) + oma * bgG);
            int b = ImageOps.roundToUint8(a * (float) (p & 0xFF) + oma * bgB);
            out[i] = ImageOps.argb(255, r, g, b);
        }
    }

    /** Background image (any size; resized bilinearly to the photo when it differs). */
    public static int[] overImage(int[] photo, float[] alpha, int width, int height, int[] bgArgb, int bgWidth, int bgHeight) {
        return overRgb(photo, alpha, width, height, backgroundRgb(bgArgb, bgWidth, bgHeight, width, height));
    }

    /** A background image as interleaved float RGB at the photo's size (resized when it differs), for {@link #overRgbInto}. */
    public static float[] backgroundRgb(int[] bgArgb, int bgWidth, int bgHeight, int width, int height) {
        float[] bg = ImageOps.argbToRgb(bgArgb, bgWidth, bgHeight);
        if (bgWidth != width || bgHeight != height) {
            bg = ImageOps.resizeBilinear(bg, bgHeight, bgWidth, 3, height, width);
        }
        return bg;
    }

    /** Blurred photo as background, with imageops.default_blur_radius. */
    public static int[] overBlur(int[] photo, float[] alpha, int width, int height) {
        return overBlur(photo, alpha, width, height, ImageOps.defaultBlurRadius(height, width));
    }

    /** Blurred photo as background: box blur of {@code radius}, 3 passes. */
    public static int[] overBlur(int[] photo, float[] alpha, int width, int height, int radius) {
        int[] out = new int[width * height];
        overBlurInto(photo, alpha, width, height, radius, new float[width * height * 3], new ImageOps.BlurBuffers(), out);
        return out;
    }

    /** {@link #overBlur} with the caller's buffers: {@code rgb} (width*height*3) receives the photo as floats. */
    public static void overBlurInto(int[] photo, float[] alpha, int width, int height, int radius, float[] rgb,
                                    ImageOps.BlurBuffers buffers, int[] out) {
        ImageOps.argbToRgbInto(photo, width, height, rgb);
        overRgbInto(photo, alpha, width, height, ImageOps.boxBlurInto(rgb, height, width, 3, radius, 3, buffers), out);
    }

    /** Background given as interleaved float RGB at photo size. */
    public static int[] overRgb(int[] photo, float[] alpha, int width, int height, float[] bgRgb) {
        int[] out = new int[width * height];
        overRgbInto(photo, alpha, width, height, bgRgb, out);
        return out;
    }

    public static void overRgbInto(int[] photo, float[] alpha, int width, int height, float[] bgRgb, int[] out) {
        int n = width * height;
        ImageOps.checkLength(photo, n, "photo");
        ImageOps.checkLength(alpha, n, "alpha");
        ImageOps.checkLength(bgRgb, n * 3, "background");
        ImageOps.checkLength(out, n, "out");
        for (int i = 0; i < n; i++) {
            int p = photo[i];
            float a = alpha[i];
            float oma = 1.0f - a;
            int r = ImageOps.roundToUint8(a * (float) ((p >> 16) & 0xFF) + oma * bgRgb[i * 3]);
            int g = ImageOps.roundToUint8(a * (float) ((p >> 8) & 0xFF) + oma * bgRgb[i * 3 + 1]);
            int b = ImageOps.roundToUint8(a * (float) (p & 0xFF) + oma * bgRgb[i * 3 + 2]);
            out[i] = ImageOps.argb(255, r, g, b);
        }
    }

    /** imageops.rgba_cutout: the photo's colours with round(alpha * 255) as alpha (unpremultiplied ARGB). */
    public static int[] cutout(int[] photo, float[] alpha, int width, int height) {
        int[] out = new int[width * height];
        cutoutInto(photo, alpha, width, height, out);
        return out;
    }

    public static void cutoutInto(int[] photo, float[] alpha, int width, int height, int[] out) {
        int n = width * height;
        ImageOps.checkLength(photo, n, "photo");
        ImageOps.checkLength(alpha, n, "alpha");
        ImageOps.checkLength(out, n, "out");
        for (int i = 0; i < n; i++) {
            out[i] = (ImageOps.roundToUint8(alpha[i] * 255.0f) << 24) | (photo[i] & 0x00FFFFFF);
        }
    }

    /** A light/dark checkerboard (ARGB) to show transparency behind a cut-out. */
    public static int[] checkerboard(int width, int height, int cell, int light, int dark) {
        int[] out = new int[width * height];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                out[y * width + x] = (((x / cell) + (y / cell)) & 1) == 0 ? light : dark;
            }
        }
        return out;
    }

    /** Source-over of an unpremultiplied ARGB cut-out onto an opaque ARGB backdrop (for display). */
    public static int[] over(int[] cutout, int[] backdrop) {
        int[] out = new int[cutout.length];
        for (int i = 0; i < cutout.length; i++) {
            int p = cutout[i];
            float a = (float) ((p >>> 24) & 0xFF) / 255.0f;
            float oma = 1.0f - a;
            int q = backdrop[i];
            int r = ImageOps.roundToUint8(a * (float) ((p >> 16) & 0xFF) + oma * (float) ((q >> 16) & 0xFF));
            int g = ImageOps.roundToUint8(a * (float) ((p >> 8) & 0xFF) + oma * (float) ((q >> 8) & 0xFF));
            int b = ImageOps.roundToUint8(a * (float) (p & 0xFF) + oma * (float) (q & 0xFF));
            out[i] = ImageOps.argb(255, r, g, b);
        }
        return out;
    }
}
