package dev.edgematting.core;

/**
 * Alpha compositing into ARGB ints (0xAARRGGBB, for Bitmap.setPixels); the Java twin of
 * {@code imageops.composite} and {@code imageops.rgba_cutout}:
 * {@code round(alpha * photo + (1 - alpha) * background)} per colour, in float32.
 */
public final class Compositor {
    private Compositor() {}

    /** Background of one colour; {@code rgb} is 0xRRGGBB (any alpha bits are ignored). */
    public static int[] overColor(int[] photo, float[] alpha, int width, int height, int rgb) {
        float[] bg = {(float) ((rgb >> 16) & 0xFF), (float) ((rgb >> 8) & 0xFF), (float) (rgb & 0xFF)};
        int n = width * height;
        ImageOps.checkLength(photo, n, "photo");
        ImageOps.checkLength(alpha, n, "alpha");
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            int p = photo[i];
            float a = alpha[i];
            float oma = 1.0f - a;
            int r = ImageOps.roundToUint8(a * (float) ((p >> 16) & 0xFF) + oma * bg[0]);
            int g = ImageOps.roundToUint8(a * (float) ((p >> 8) & 0xFF) + oma * bg[1]);
            int b = ImageOps.roundToUint8(a * (float) (p & 0xFF) + oma * bg[2]);
            out[i] = ImageOps.argb(255, r, g, b);
        }
        return out;
    }

    /** Background image (any size; resized bilinearly to the photo when it differs). */
    public static int[] overImage(int[] photo, float[] alpha, int width, int height, int[] bgArgb, int bgWidth, int bgHeight) {
        float[] bg = ImageOps.argbToRgb(bgArgb, bgWidth, bgHeight);
        if (bgWidth != width || bgHeight != height) {
            bg = ImageOps.resizeBilinear(bg, bgHeight, bgWidth, 3, height, width);
        }
        return overRgb(photo, alpha, width, height, bg);
    }

    /** Blurred photo as background, with imageops.default_blur_radius. */
    public static int[] overBlur(int[] photo, float[] alpha, int width, int height) {
        return overBlur(photo, alpha, width, height, ImageOps.defaultBlurRadius(height, width));
    }

    /** Blurred photo as background: box blur of {@code radius}, 3 passes. */
    public static int[] overBlur(int[] photo, float[] alpha, int width, int height, int radius) {
        float[] fg = ImageOps.argbToRgb(photo, width, height);
        return overRgb(photo, alpha, width, height, ImageOps.boxBlur(fg, height, width, 3, radius, 3));
    }

    /** Background given as interleaved float RGB at photo size. */
    public static int[] overRgb(int[] photo, float[] alpha, int width, int height, float[] bgRgb) {
        int n = width * height;
        ImageOps.checkLength(photo, n, "photo");
        ImageOps.checkLength(alpha, n, "alpha");
        ImageOps.checkLength(bgRgb, n * 3, "background");
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            int p = photo[i];
            float a = alpha[i];
            float oma = 1.0f - a;
            int r = ImageOps.roundToUint8(a * (float) ((p >> 16) & 0xFF) + oma * bgRgb[i * 3]);
            int g = ImageOps.roundToUint8(a * (float) ((p >> 8) & 0xFF) + oma * bgRgb[i * 3 + 1]);
            int b = ImageOps.roundToUint8(a * (float) (p & 0xFF) + oma * bgRgb[i * 3 + 2]);
            out[i] = ImageOps.argb(255, r, g, b);
        }
        return out;
    }

    /** imageops.rgba_cutout: the photo's colours with round(alpha * 255) as alpha (unpremultiplied ARGB). */
    public static int[] cutout(int[] photo, float[] alpha, int width, int height) {
        int n = width * height;
        ImageOps.checkLength(photo, n, "photo");
        ImageOps.checkLength(alpha, n, "alpha");
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = (ImageOps.roundToUint8(alpha[i] * 255.0f) << 24) | (photo[i] & 0x00FFFFFF);
        }
        return out;
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
