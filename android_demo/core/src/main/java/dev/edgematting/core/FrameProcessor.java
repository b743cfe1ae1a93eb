package dev.edgematting.core;

import java.nio.ByteBuffer;

/**
 * The whole per-frame pipeline with buffers kept across frames: photo -> input tensor ->
 * (the app runs the interpreter on {@link #input()} / {@link #output()}) -> alpha at photo
 * size (bilinear, or the {@link GuidedFilter}) -> composite or cut-out.
 *
 * <p>Every buffer (input and output tensors, the model-size pixels and alpha, the photo-size
 * alpha and composite, blur and guided-filter work arrays, resize weights) is allocated on
 * the first frame of a given size and reused while the size stays the same: a stream of
 * camera frames allocates nothing here after the first (JUnit checks it with the JVM's
 * per-thread allocation counter). Results are bit-identical to the one-off functions of
 * {@link ModelInput}, {@link ModelOutput} and {@link Compositor}.
 *
 * <p>Returned arrays belong to the processor and are overwritten by the next frame. Not
 * thread-safe: one processor per thread (the camera's analysis thread).
 */
public final class FrameProcessor {
    public final ModelMetadata metadata;
    private final ByteBuffer input;
    private final ByteBuffer output;
    private final int modelH;
    private final int modelW;
    private final float[] rgbLr;
    private final float[] alphaLr;
    private GuidedFilter guided;
    private final GuidedFilter.Buffers guidedBuffers = new GuidedFilter.Buffers();
    private final ImageOps.BlurBuffers blurBuffers = new ImageOps.BlurBuffers();

    private int width;
    private int height;
    private int[] frame;
    private ImageOps.AxisWeights inY;
    private ImageOps.AxisWeights inX;
    private ImageOps.AxisWeights outY;
    private ImageOps.AxisWeights outX;
    private float[] alpha = new float[0];
    private int[] composite = new int[0];
    private float[] rgb = new float[0];

    /** A processor with direct, native-order tensor buffers (what the LiteRT Interpreter takes). */
    public FrameProcessor(ModelMetadata m) {
        this(m, ModelInput.allocate(m), ModelOutput.allocate(m));
    }

    /** A processor on the caller's tensor buffers (at least inputBytes / outputBytes). */
    public FrameProcessor(ModelMetadata m, ByteBuffer input, ByteBuffer output) {
        if (input.capacity() < m.inputBytes()) throw new IllegalArgumentException("input buffer too small");
        if (output.capacity() < m.outputBytes()) throw new IllegalArgumentException("output buffer too small");
        this.metadata = m;
        this.input = input;
        this.output = output;
        this.modelH = m.inputHeight;
        this.modelW = m.inputWidth;
        this.rgbLr = new float[modelH * modelW * 3];
        this.alphaLr = new float[modelH * modelW];
        this.guided = null;
    }

    /** The input tensor buffer, filled by {@link #prepare}. */
    public ByteBuffer input() {
        return input;
    }

    /** The output tensor buffer, for the interpreter to fill (rewind it before the run). */
    public ByteBuffer output() {
        return output;
    }

    /** Upsample the alpha with this guided filter; null (the default) for plain bilinear. */
    public void setGuidedFilter(GuidedFilter filter) {
        this.guided = filter;
    }

    public GuidedFilter guidedFilter() {
        return guided;
    }

    public int width() {
        return width;
    }

    public int height() {
        return height;
    }

    /**
     * Step 1: resizes the frame ({@code argb}, width x height; kept by reference until the
     * next call, so do not change it before the composite) and encodes it into
     * {@link #input()}, rewound. Returns the input buffer.
     */
    public ByteBuffer prepare(int[] argb, int width, int height) {
        ImageOps.checkLength(argb, width * height, "frame");
        if (width != this.width || height != this.height || inY == null) {
            this.width = width;
            this.height = height;
            int n = width * height;
            if (alpha.length != n) {
                alpha = new float[n];
                composite = new int[n];
                rgb = new float[0]; // allocated on first blur
            }
        }
        inY = ImageOps.axisWeights(inY, height, modelH);
        inX = ImageOps.axisWeights(inX, width, modelW);
        outY = ImageOps.axisWeights(outY, modelH, height);
        outX = ImageOps.axisWeights(outX, modelW, width);
        this.frame = argb;
        ImageOps.resizeArgbToRgbInto(argb, height, width, inY, inX, rgbLr);
        return ModelInput.encode(rgbLr, metadata, input);
    }

    /**
     * Step 2, after the interpreter wrote {@link #output()}: the alpha in [0, 1] at the frame's
     * size (contract.output_to_alpha, guided when {@link #setGuidedFilter} was given one).
     */
    public float[] alpha() {
        checkPrepared();
        ModelOutput.modelAlphaInto(output, metadata, alphaLr);
        if (guided == null) {
            ModelOutput.alphaToPhotoInto(alphaLr, modelH, modelW, outY, outX, alpha);
        } else {
            guided.upsampleInto(alphaLr, modelH, modelW, rgbLr, frame, width, height, outY, outX, guidedBuffers, alpha);
        }
        return alpha;
    }

    /** The last alpha computed by {@link #alpha()}. */
    public float[] lastAlpha() {
        return alpha;
    }

    /** Step 3: the frame over one colour (0xRRGGBB). */
    public int[] overColor(int rgbColor) {
        checkPrepared();
        Compositor.overColorInto(frame, alpha, width, height, rgbColor, composite);
        return composite;
    }

    /** The frame over its own blur, with imageops.default_blur_radius. */
    public int[] overBlur() {
        return overBlur(ImageOps.defaultBlurRadius(height, width));
    }

    public int[] overBlur(int radius) {
        checkPrepared();
        if (rgb.length != width * height * 3) rgb = new float[width * height * 3];
        Compositor.overBlurInto(frame, alpha, width, height, radius, rgb, blurBuffers, composite);
        return composite;
    }

    /** The frame over a background given as float RGB at the frame's size ({@link Compositor#backgroundRgb}). */
    public int[] overRgb(float[] background) {
        checkPrepared();
        Compositor.overRgbInto(frame, alpha, width, height, background, composite);
        return composite;
    }

    /** The frame's colours with the alpha as their alpha (unpremultiplied ARGB). */
    public int[] cutout() {
        checkPrepared();
        Compositor.cutoutInto(frame, alpha, width, height, composite);
        return composite;
    }

    private void checkPrepared() {
        if (frame == null) throw new IllegalStateException("call prepare(frame) first");
    }
}
