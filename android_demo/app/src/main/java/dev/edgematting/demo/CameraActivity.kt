package dev.edgematting.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.Color
import android.graphics.Matrix
import android.net.Uri
import android.os.Bundle
import android.util.Size
import android.widget.Button
import android.widget.ImageView
import android.widget.TextView
import android.widget.Toast
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.resolutionselector.ResolutionSelector
import androidx.camera.core.resolutionselector.ResolutionStrategy
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.core.content.ContextCompat
import dev.edgematting.core.Compositor
import dev.edgematting.core.ImageOps
import java.util.Locale
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Live camera: every analysis frame -> ARGB -> Java core -> Fast-SCNN (the "camera" model) ->
 * Java core composite (blur, colour or picked image behind the person) -> ImageView, with the
 * inference time and the backend (GPU delegate or CPU/XNNPACK) on screen.
 */
class CameraActivity : AppCompatActivity() {
    private enum class Mode { BLUR, COLOR, IMAGE }

    private lateinit var preview: ImageView
    private lateinit var stats: TextView
    private lateinit var backendNote: TextView
    private val analysisExecutor: ExecutorService = Executors.newSingleThreadExecutor()

    // The engine is set on the UI thread once loaded, then used on the analysis thread;
    // the background cache lives on the analysis thread ...
    @Volatile private var engine: SegmentationEngine? = null
    private var bgCache: FloatArray? = null
    private var bgCacheSize = 0L
    // ... and written from the UI thread: read as volatile snapshots.
    @Volatile private var mode = Mode.BLUR
    @Volatile private var color = PALETTE[0]
    @Volatile private var pickedBackground: Bitmap? = null
    @Volatile private var useFrontCamera = false

    private val requestCamera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else {
            Toast.makeText(this, R.string.camera_permission_denied, Toast.LENGTH_LONG).show()
            finish()
        }
    }

    private val pickBackground = registerForActivityResult(ActivityResultContracts.GetContent()) { uri: Uri? ->
        if (uri == null) return@registerForActivityResult
        analysisExecutor.execute {
            val bmp = runCatching { decodeBitmap(this, uri, maxSide = 1280) }.getOrNull()
            runOnUiThread {
                if (bmp == null) {
                    Toast.makeText(this, R.string.error_decode, Toast.LENGTH_LONG).show()
                } else {
                    pickedBackground = bmp
                    mode = Mode.IMAGE
                }
            }
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_camera)
        preview = findViewById(R.id.camera_output)
        stats = findViewById(R.id.camera_stats)
        backendNote = findViewById(R.id.camera_backend)

        findViewById<Button>(R.id.button_blur).setOnClickListener { mode = Mode.BLUR }
        findViewById<Button>(R.id.button_color).setOnClickListener {
            // a second tap on "Colour" moves to the next colour of the palette
            if (mode == Mode.COLOR) color = PALETTE[(PALETTE.indexOf(color) + 1) % PALETTE.size]
            mode = Mode.COLOR
        }
        findViewById<Button>(R.id.button_image).setOnClickListener { pickBackground.launch("image/*") }
        findViewById<Button>(R.id.button_flip).setOnClickListener {
            useFrontCamera = !useFrontCamera
            startCamera()
        }

        // Load the model off the UI thread; the backend decision is shown as soon as it is made.
        analysisExecutor.execute {
            val result = runCatching { SegmentationEngine.load(this, Role.CAMERA) }
            runOnUiThread {
                result.onSuccess {
                    engine = it
                    backendNote.text = getString(R.string.backend_note, it.backend, it.modelFile,
                        it.metadata.inputWidth, it.metadata.inputHeight, it.metadata.inputDType.jsonName)
                    if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
                        startCamera()
                    } else {
                        requestCamera.launch(Manifest.permission.CAMERA)
                    }
                }.onFailure { backendNote.text = it.message }
            }
        }
    }

    private fun startCamera() {
        val providerFuture = ProcessCameraProvider.getInstance(this)
        providerFuture.addListener({
            val provider = providerFuture.get()
            val analysis = ImageAnalysis.Builder()
                .setResolutionSelector(
                    ResolutionSelector.Builder()
                        .setResolutionStrategy(ResolutionStrategy(Size(640, 480), ResolutionStrategy.FALLBACK_RULE_CLOSEST_LOWER_THEN_HIGHER))
                        .build()
                )
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            analysis.setAnalyzer(analysisExecutor, ::analyze)
            val selector = if (useFrontCamera) CameraSelector.DEFAULT_FRONT_CAMERA else CameraSelector.DEFAULT_BACK_CAMERA
            provider.unbindAll()
            try {
                provider.bindToLifecycle(this, selector, analysis)
            } catch (e: IllegalArgumentException) { // no such camera on this device
                Toast.makeText(this, e.message, Toast.LENGTH_LONG).show()
            }
        }, ContextCompat.getMainExecutor(this))
    }

    private fun analyze(image: ImageProxy) {
        val eng = engine
        if (eng == null) {
            image.close()
            return
        }
        val t0 = System.nanoTime()
        val frame = try {
            uprightBitmap(image)
        } finally {
            image.close()
        }
        val w = frame.width
        val h = frame.height
        val argb = frame.argbPixels()
        val alpha = eng.alpha(argb, w, h)
        val out = when (mode) {
            Mode.BLUR -> Compositor.overBlur(argb, alpha, w, h)
            Mode.COLOR -> Compositor.overColor(argb, alpha, w, h, color)
            Mode.IMAGE -> {
                val bg = pickedBackground
                if (bg == null) Compositor.overColor(argb, alpha, w, h, color)
                else Compositor.overRgb(argb, alpha, w, h, backgroundAt(bg, w, h))
            }
        }
        val shown = argbBitmap(out, w, h)
        val totalMs = (System.nanoTime() - t0) / 1e6
        val text = String.format(Locale.US, getString(R.string.camera_stats), eng.lastInferenceMs, totalMs, w, h)
        runOnUiThread {
            preview.setImageBitmap(shown)
            stats.text = text
        }
    }

    /** The picked background as float RGB at frame size (resized once per frame size / image). */
    private fun backgroundAt(bg: Bitmap, w: Int, h: Int): FloatArray {
        val key = (System.identityHashCode(bg).toLong() shl 32) xor (w.toLong() shl 16) xor h.toLong()
        bgCache?.let { if (bgCacheSize == key) return it }
        val rgb = ImageOps.argbToRgb(bg.argbPixels(), bg.width, bg.height)
        val resized = if (bg.width == w && bg.height == h) rgb else ImageOps.resizeBilinear(rgb, bg.height, bg.width, 3, h, w)
        bgCache = resized
        bgCacheSize = key
        return resized
    }

    /** The analysis frame as an upright (and, for the front camera, mirrored) ARGB_8888 bitmap. */
    private fun uprightBitmap(image: ImageProxy): Bitmap {
        val raw = image.toBitmap()
        val rotation = image.imageInfo.rotationDegrees
        if (rotation == 0 && !useFrontCamera) return raw
        val m = Matrix().apply {
            postRotate(rotation.toFloat())
            if (useFrontCamera) postScale(-1f, 1f)
        }
        return Bitmap.createBitmap(raw, 0, 0, raw.width, raw.height, m, false)
    }

    override fun onDestroy() {
        super.onDestroy()
        analysisExecutor.execute {
            engine?.close()
            engine = null
        }
        analysisExecutor.shutdown()
    }

    companion object {
        private val PALETTE = intArrayOf(0x00B140, 0x1E88E5, Color.WHITE and 0xFFFFFF, 0x212121, 0xF4511E)
    }
}
