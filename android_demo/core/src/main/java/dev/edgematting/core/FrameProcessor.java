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
 * <p>A prior-frame model ({@link ModelMetadata#takesPrior}, channel order "RGB+prior") takes
 * the alpha it output for the previous frame as its 4th input channel. {@link #prepareFrame}
 * (a camera frame) feeds it: the model-size alpha of the last stream frame whose
 * {@link #alpha()} was computed, {@code clip(decode_output(raw), 0, 1)} as
 * {@code edgematting.video} keeps it; zeros on the first frame of a stream, after
 * {@link #resetStream}, after a frame of another size, and when the previous frame's alpha
 * was never computed. {@link #prepare} (a single photo) always feeds zeros and ends the
 * stream. Any other model ignores all this.
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
    /** A prior-frame model's previous alpha at model size (length 0 for any other model). */
    private final float[] prior;
    /** {@link #prior} holds the last stream frame's alpha: the next {@link #prepareFrame} feeds it. */
    private boolean priorReady;
    /** The frame last prepared is a stream frame: its {@link #alpha()} becomes the next prior. */
    private boolean streamFrame;
    /** The frame last prepared was given a previous alpha (not zeros). */
    private boolean fedPrior;
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
        this.prior = new float[m.takesPrior ? modelH * modelW : 0];
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
     * Step 1 for a single photo: resizes it ({@code argb}, width x height; kept by reference
     * until the next call, so do not change it before the composite) and encodes it into
     * {@link #input()}, rewound. Returns the input buffer. A prior-frame model gets zeros as
     * its prior (a photo has no previous frame), and the stream is reset.
     */
    public ByteBuffer prepare(int[] argb, int width, int height) {
        resetStream();
        return prepare(argb, width, height, false);
    }

    /**
     * Step 1 for a frame of a stream (the camera): as {@link #prepare}, but a prior-frame
     * model's 4th channel is the previous frame's alpha (model size) when there is one: the
     * last frame of this stream was the same size and its {@link #alpha()} was computed;
     * else zeros. This frame's {@link #alpha()} becomes the next frame's prior.
     */
    public ByteBuffer prepareFrame(int[] argb, int width, int height) {
        return prepare(argb, width, height, true);
    }

    /** A new stream (another camera, a new session): the next {@link #prepareFrame} feeds zeros. */
    public void resetStream() {
        priorReady = false;
        streamFrame = false;
    }

    /**
     * The previous alpha (model size, in [0, 1]) that the next {@link #prepareFrame} will feed
     * a prior-frame model; null when it will feed zeros (or the model takes no prior). The
     * processor's own array.
     */
    public float[] prior() {
        return priorReady && metadata.takesPrior ? prior : null;
    }

    /**
     * true when the frame last prepared was given the previous frame's alpha; false when a
     * prior-frame model was given zeros (or the model takes no prior).
     */
    public boolean fedPrior() {
        return fedPrior;
    }

    private ByteBuffer prepare(int[] argb, int width, int height, boolean stream) {
        ImageOps.checkLength(argb, width * height, "frame");
        if (width != this.width || height != this.height || inY == null) {
            resetStream(); // a new resolution: the previous alpha is of another picture
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
        float[] previous = stream ? prior() : null;
        ByteBuffer in = ModelInput.encode(rgbLr, previous, metadata, input);
        priorReady = false; // consumed: this frame's alpha() is the next prior
        streamFrame = stream;
        fedPrior = previous != null;
        return in;
    }

    /**
     * Step 2, after the interpreter wrote {@link #output()}: the alpha in [0, 1] at the frame's
     * size (contract.output_to_alpha, guided when {@link #setGuidedFilter} was given one).
     */
    public float[] alpha() {
        checkPrepared();
        ModelOutput.modelAlphaInto(output, metadata, alphaLr);
        if (streamFrame && metadata.takesPrior) { // the next frame's prior, as edgematting.video keeps it
            for (int i = 0; i < alphaLr.length; i++) prior[i] = Math.min(Math.max(alphaLr[i], 0.0f), 1.0f);
            priorReady = true;
        }
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
