package dev.edgematting.demo

import android.app.Application
import android.graphics.Bitmap
import android.graphics.Color
import android.net.Uri
import androidx.camera.core.ImageProxy
import androidx.lifecycle.LiveData
import androidx.lifecycle.MutableLiveData
import dev.edgematting.core.Compositor
import dev.edgematting.core.GuidedFilter
import dev.edgematting.core.ImageOps
import dev.edgematting.core.Orientation
import java.util.Locale
import java.util.concurrent.atomic.AtomicBoolean

/**
 * The live camera's model and per-frame buffers, kept across rotations. Every analysis frame
 * runs on the engine's worker: RGBA plane -> ARGB -> upright (core `ImageOps`, `Orientation`)
 * -> the core's `FrameProcessor` (model input, alpha, composite; its buffers are reused) ->
 * one of two output bitmaps, reused. After the first frame of a size, nothing per frame is
 * allocated on our side but the small status [Frame] posted to the screen.
 */
class CameraViewModel(app: Application) : EngineViewModel(app, Role.CAMERA) {
    enum class Mode { BLUR, COLOR, IMAGE }

    /** A composited frame for the screen; [bitmap] is reused two frames later. */
    class Frame(val bitmap: Bitmap, val stats: String)

    // Settings, written on the UI thread, read per frame.
    @Volatile var mode = Mode.BLUR
    @Volatile var color = PALETTE[0]
        private set
    @Volatile var useFrontCamera = false
    /** Guided-filter upsampling of the alpha; null until the user or the sidecar decides. */
    @Volatile var guided: Boolean? = null

    private val _frames = MutableLiveData<Frame>()
    val frames: LiveData<Frame> get() = _frames
    private val _error = MutableLiveData<String?>(null)
    /** The last frame error (shown on screen; the stream goes on with the next frame). */
    val error: LiveData<String?> get() = _error

    // Worker-thread state: frame buffers, reused while the frame size stays the same.
    private var raw = IntArray(0)
    private var upright = IntArray(0)
    private val bitmaps = arrayOfNulls<Bitmap>(2)
    private var next = 0
    /** A frame is posted and not yet on screen: skip frames meanwhile (never write a bitmap being shown). */
    private val frameInFlight = AtomicBoolean(false)
    /** The camera was (re)started: a prior-frame model's next frame gets zeros, not the old stream's alpha. */
    @Volatile private var newStream = true
    /** The picked background: ARGB at its own size, and as float RGB at the frame size (cached). */
    @Volatile private var background: DecodedPhoto? = null
    private var backgroundRgb: FloatArray? = null
    private var backgroundKey: Any? = null
    private var backgroundW = 0
    private var backgroundH = 0

    init {
        startLoading()
    }

    override fun onTaskError(message: String) {
        _error.postValue(message)
    }

    fun nextColor() {
        if (mode == Mode.COLOR) color = PALETTE[(PALETTE.indexOf(color) + 1) % PALETTE.size]
        mode = Mode.COLOR
    }

    /** Decodes the picked background off the UI thread (bounded to 1280 pixels). */
    fun pickBackground(uri: Uri) {
        work {
            background = try {
                decodePhoto(getApplication(), uri, 1280)
            } catch (e: java.io.IOException) {
                throw IllegalArgumentException(getApplication<Application>().getString(R.string.error_decode), e)
            }
            mode = Mode.IMAGE
        }
    }

    /** The camera was bound again (started, flipped, resumed): a new stream of frames. */
    fun startStream() {
        newStream = true
    }

    /** The UI thread has put the last frame on screen: the next one may be drawn. */
    fun frameShown() {
        frameInFlight.set(false)
    }

    /** CameraX analyzer, on the worker. Never throws: a failed frame is reported and the next one tried. */
    fun analyze(image: ImageProxy) {
        try {
            val eng = engine
            if (eng == null || !frameInFlight.compareAndSet(false, true)) return
            var posted = false
            try {
                posted = drawFrame(eng, image)
            } finally {
                if (!posted) frameInFlight.set(false)
            }
        } catch (e: Exception) {
            _error.postValue(e.message ?: e.toString())
        } catch (e: OutOfMemoryError) {
            _error.postValue(getApplication<Application>().getString(R.string.error_memory))
        } finally {
            image.close()
        }
    }

    private fun drawFrame(eng: SegmentationEngine, image: ImageProxy): Boolean {
        val t0 = System.nanoTime()
        val plane = image.planes[0]
        val w = image.width
        val h = image.height
        if (raw.size != w * h) {
            raw = IntArray(w * h)
            upright = IntArray(w * h)
        }
        ImageOps.rgbaToArgbInto(plane.buffer, plane.rowStride, plane.pixelStride, w, h, raw)
        val o = orientation(image.imageInfo.rotationDegrees, useFrontCamera)
        val fw = o.outWidth(w, h)
        val fh = o.outHeight(w, h)
        val frame = if (o.rotateCw == 0 && !o.mirror) raw else upright.also { o.applyInto(raw, w, h, it) }

        val useGuided = guided ?: (eng.metadata.guidedFilter != null)
        eng.processor.setGuidedFilter(if (useGuided) eng.metadata.guidedFilter ?: GuidedFilter.defaults() else null)
        if (newStream || o !== streamOrientation) { // a prior-frame model's previous alpha is of another picture
            newStream = false
            streamOrientation = o
            eng.processor.resetStream()
        }
        eng.alpha(frame, fw, fh, stream = true) // a prior-frame model gets the previous frame's alpha
        val p = eng.processor
        val out = when (mode) {
            Mode.BLUR -> p.overBlur()
            Mode.COLOR -> p.overColor(color)
            Mode.IMAGE -> backgroundAt(fw, fh)?.let { p.overRgb(it) } ?: p.overColor(color)
        }
        val bmp = bitmapFor(next, fw, fh)
        bmp.setPixels(out, 0, fw, 0, 0, fw, fh)
        next = 1 - next
        val totalMs = (System.nanoTime() - t0) / 1e6
        val stats = String.format(Locale.US, getApplication<Application>().getString(R.string.camera_stats),
            eng.lastInferenceMs, totalMs, fw, fh)
        _frames.postValue(Frame(bmp, stats))
        return true
    }

    /** The orientation of the stream's frames: another one starts a new stream. */
    private var streamOrientation: Orientation? = null
    private var lastOrientation = Orientation.IDENTITY
    private var lastRotation = 0
    private var lastMirror = false

    private fun orientation(rotation: Int, mirror: Boolean): Orientation {
        if (rotation != lastRotation || mirror != lastMirror) {
            lastOrientation = Orientation.forCamera(rotation, mirror)
            lastRotation = rotation
            lastMirror = mirror
        }
        return lastOrientation
    }

    /** Output bitmap [i] at this size (a new one only when the size changes). */
    private fun bitmapFor(i: Int, w: Int, h: Int): Bitmap {
        val b = bitmaps[i]
        if (b != null && b.width == w && b.height == h) return b
        return Bitmap.createBitmap(w, h, Bitmap.Config.ARGB_8888).also { bitmaps[i] = it }
    }

    /** The picked background as float RGB at frame size (resized once per image and frame size). */
    private fun backgroundAt(w: Int, h: Int): FloatArray? {
        val bg = background ?: return null
        val cached = backgroundRgb
        if (cached != null && backgroundKey === bg && backgroundW == w && backgroundH == h) return cached
        return Compositor.backgroundRgb(bg.argb, bg.width, bg.height, w, h).also {
            backgroundRgb = it
            backgroundKey = bg
            backgroundW = w
            backgroundH = h
        }
    }

    companion object {
        private val PALETTE = intArrayOf(0x00B140, 0x1E88E5, Color.WHITE and 0xFFFFFF, 0x212121, 0xF4511E)
    }
}
