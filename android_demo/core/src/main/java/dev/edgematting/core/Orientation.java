package dev.edgematting.core;

/**
 * Turning pixels upright: the Java twin of {@code imageops.exif_transform} / {@code orient}.
 * A transform is "mirror left-right (when {@code mirror}), then rotate clockwise by
 * 0/90/180/270 degrees". EXIF orientations map to it as in {@code imageops.EXIF_ORIENTATIONS}
 * (2/4/5/7 mirrored, as androidx ExifInterface's isFlipped/getRotationDegrees); the camera's
 * "rotate, then mirror the front camera" is {@link #forCamera}.
 */
public final class Orientation {
    /** Clockwise degrees: 0, 90, 180 or 270. */
    public final int rotateCw;
    /** Mirror left-right before rotating. */
    public final boolean mirror;

    public static final Orientation IDENTITY = new Orientation(0, false);

    public Orientation(int rotateCw, boolean mirror) {
        if (rotateCw != 0 && rotateCw != 90 && rotateCw != 180 && rotateCw != 270) {
            throw new IllegalArgumentException("rotation must be 0, 90, 180 or 270 degrees, got " + rotateCw);
        }
        this.rotateCw = rotateCw;
        this.mirror = mirror;
    }

    /** imageops.exif_transform: the transform that shows a photo with this EXIF orientation upright; 0 and unknown values: identity. */
    public static Orientation fromExif(int orientation) {
        switch (orientation) {
            case 2: return new Orientation(0, true);
            case 3: return new Orientation(180, false);
            case 4: return new Orientation(180, true);
            case 5: return new Orientation(270, true);
            case 6: return new Orientation(90, false);
            case 7: return new Orientation(90, true);
            case 8: return new Orientation(270, false);
            default: return IDENTITY;
        }
    }

    /**
     * A camera frame: rotate clockwise by {@code rotationDegrees} (ImageInfo.getRotationDegrees),
     * then, for the front camera, mirror left-right so the preview behaves like a mirror.
     * Mirroring after a rotation by r equals mirroring before a rotation by -r.
     */
    public static Orientation forCamera(int rotationDegrees, boolean mirrorAfter) {
        int r = ((rotationDegrees % 360) + 360) % 360;
        return mirrorAfter ? new Orientation((360 - r) % 360, true) : new Orientation(r, false);
    }

    /** true when the transform swaps width and height (90 or 270 degrees). */
    public boolean swapsSides() {
        return rotateCw == 90 || rotateCw == 270;
    }

    public int outWidth(int width, int height) {
        return swapsSides() ? height : width;
    }

    public int outHeight(int width, int height) {
        return swapsSides() ? width : height;
    }

    /** The transformed pixels (a new array of outWidth x outHeight). */
    public int[] apply(int[] src, int width, int height) {
        int[] out = new int[width * height];
        applyInto(src, width, height, out);
        return out;
    }

    /**
     * imageops.orient on ARGB ints: {@code dst} (width * height values, a different array
     * from {@code src}) receives the upright image of outWidth x outHeight.
     */
    public void applyInto(int[] src, int width, int height, int[] dst) {
        ImageOps.checkLength(src, width * height, "src");
        ImageOps.checkLength(dst, width * height, "dst");
        if (src == dst) throw new IllegalArgumentException("src and dst must differ");
        int ow = outWidth(width, height);
        int oh = outHeight(width, height);
        int o = 0;
        for (int y = 0; y < oh; y++) {
            for (int x = 0; x < ow; x++) {
                // (sy, mx): pixel of the mirrored image m (height x width) that lands at (y, x)
                int sy;
                int mx;
                switch (rotateCw) {
                    case 90: sy = height - 1 - x; mx = y; break;
                    case 180: sy = height - 1 - y; mx = width - 1 - x; break;
                    case 270: sy = x; mx = width - 1 - y; break;
                    default: sy = y; mx = x; break;
                }
                int sx = mirror ? width - 1 - mx : mx;
                dst[o++] = src[sy * width + sx];
            }
        }
    }

    @Override
    public String toString() {
        return "Orientation(" + rotateCw + (mirror ? ", mirrored)" : ")");
    }
}
