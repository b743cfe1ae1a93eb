package dev.edgematting.demo

import android.Manifest
import android.content.pm.PackageManager
import android.net.Uri
import android.os.Bundle
import android.util.Size
import android.widget.Button
import android.widget.CheckBox
import android.widget.ImageView
import android.widget.TextView
import android.widget.Toast
import androidx.activity.result.contract.ActivityResultContracts
import androidx.activity.viewModels
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.resolutionselector.ResolutionSelector
import androidx.camera.core.resolutionselector.ResolutionStrategy
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.core.content.ContextCompat
import androidx.lifecycle.Lifecycle

/**
 * Live camera: every analysis frame -> Java core -> Fast-SCNN (the "camera" model) -> Java core
 * composite (blur, colour or picked image behind the person) -> screen, with the inference
 * time and the backend (GPU delegate or CPU/XNNPACK) on screen. "Refine edges" upsamples the
 * alpha with the guided filter.
 *
 * The model and the frame buffers live in [CameraViewModel]: rotating the phone does not
 * reload the model, and leaving the screen closes it even while it is still loading. The
 * camera starts from a LiveData observer, i.e. only while this activity is started, so
 * nothing is launched on a destroyed one.
 */
class CameraActivity : AppCompatActivity() {
    private val model: CameraViewModel by viewModels()
    private var cameraStarted = false

    private val requestCamera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else {
            Toast.makeText(this, R.string.camera_permission_denied, Toast.LENGTH_LONG).show()
            finish()
        }
    }

    private val pickBackground = registerForActivityResult(ActivityResultContracts.GetContent()) { uri: Uri? ->
        if (uri != null) model.pickBackground(uri)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_camera)
        val preview = findViewById<ImageView>(R.id.camera_output)
        val stats = findViewById<TextView>(R.id.camera_stats)
        val backendNote = findViewById<TextView>(R.id.camera_backend)
        val guided = findViewById<CheckBox>(R.id.camera_guided)

        findViewById<Button>(R.id.button_blur).setOnClickListener { model.mode = CameraViewModel.Mode.BLUR }
        findViewById<Button>(R.id.button_color).setOnClickListener { model.nextColor() } // again: next colour
        findViewById<Button>(R.id.button_image).setOnClickListener { pickBackground.launch("image/*") }
        findViewById<Button>(R.id.button_flip).setOnClickListener {
            model.useFrontCamera = !model.useFrontCamera
            if (cameraStarted) startCamera()
        }
        guided.setOnCheckedChangeListener { _, on -> model.guided = on }

        model.state.observe(this) { s ->
            when (s) {
                is EngineState.Loading -> backendNote.setText(R.string.loading_model)
                is EngineState.Failed -> backendNote.text = s.message
                is EngineState.Ready -> {
                    backendNote.text = s.note
                    if (model.guided == null) guided.isChecked = s.guidedByDefault // the sidecar's choice until the user's
                    if (!cameraStarted) {
                        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
                            startCamera()
                        } else {
                            requestCamera.launch(Manifest.permission.CAMERA) // observers run only while started
                        }
                    }
                }
            }
        }
        model.frames.observe(this) { f ->
            preview.setImageBitmap(f.bitmap)
            stats.text = f.stats
            model.frameShown()
        }
        model.error.observe(this) { e -> if (e != null) stats.text = e }
    }

    private fun startCamera() {
        cameraStarted = true
        val providerFuture = ProcessCameraProvider.getInstance(this)
        providerFuture.addListener({
            // The screen may have been left while CameraX was starting.
            if (!lifecycle.currentState.isAtLeast(Lifecycle.State.CREATED)) return@addListener
            val provider = try {
                providerFuture.get()
            } catch (e: Exception) {
                Toast.makeText(this, e.message, Toast.LENGTH_LONG).show()
                return@addListener
            }
            val analysis = ImageAnalysis.Builder()
                .setResolutionSelector(
                    ResolutionSelector.Builder()
                        .setResolutionStrategy(ResolutionStrategy(Size(640, 480), ResolutionStrategy.FALLBACK_RULE_CLOSEST_LOWER_THEN_HIGHER))
                        .build()
                )
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            // The analyzer runs on the engine's own worker thread, where the model lives.
            analysis.setAnalyzer(model.executor) { image -> model.analyze(image) }
            model.startStream() // a prior-frame model starts again from zeros
            val selector = if (model.useFrontCamera) CameraSelector.DEFAULT_FRONT_CAMERA else CameraSelector.DEFAULT_BACK_CAMERA
            provider.unbindAll()
            try {
                provider.bindToLifecycle(this, selector, analysis)
            } catch (e: IllegalArgumentException) { // no such camera on this device
                Toast.makeText(this, e.message, Toast.LENGTH_LONG).show()
            } catch (e: IllegalStateException) {
                Toast.makeText(this, e.message, Toast.LENGTH_LONG).show()
            }
        }, ContextCompat.getMainExecutor(this))
    }
}
