package dev.edgematting.demo

import android.graphics.Shader
import android.graphics.drawable.BitmapDrawable
import android.net.Uri
import android.os.Bundle
import android.widget.Button
import android.widget.CheckBox
import android.widget.ImageView
import android.widget.TextView
import android.widget.Toast
import androidx.activity.result.contract.ActivityResultContracts
import androidx.activity.viewModels
import androidx.appcompat.app.AppCompatActivity
import dev.edgematting.core.Compositor

/**
 * Still photo: pick from the gallery, run MattingNet (the "photo" model), show the cut-out over
 * a checkerboard and save it as a transparent PNG (MediaStore on Android 10+, the app's
 * pictures folder before). "Refine edges" upsamples the alpha with the guided filter; "Comic
 * effect" shows (and saves) the photo with the person in comic style instead.
 *
 * The model, the photo and the cut-out live in [PhotoViewModel]: rotating the phone keeps
 * them, and leaving the screen closes the model even while it is still loading.
 */
class PhotoActivity : AppCompatActivity() {
    private val model: PhotoViewModel by viewModels()

    private val pickPhoto = registerForActivityResult(ActivityResultContracts.GetContent()) { uri: Uri? ->
        if (uri != null) model.process(uri)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_photo)
        val imageView = findViewById<ImageView>(R.id.photo_output)
        val backendNote = findViewById<TextView>(R.id.photo_backend)
        val status = findViewById<TextView>(R.id.photo_status)
        val saveButton = findViewById<Button>(R.id.button_save)
        val pickButton = findViewById<Button>(R.id.button_pick)
        val guided = findViewById<CheckBox>(R.id.photo_guided)
        val comic = findViewById<CheckBox>(R.id.photo_comic)
        imageView.background = checkerboardDrawable()
        saveButton.isEnabled = false
        // Picking is allowed while the model loads: the photo waits for it on the worker.
        pickButton.setOnClickListener { pickPhoto.launch("image/*") }
        saveButton.setOnClickListener { model.save() }
        guided.setOnCheckedChangeListener { _, on -> model.setGuided(on) }
        comic.setOnCheckedChangeListener { _, on -> model.setComic(on) }

        model.state.observe(this) { s ->
            when (s) {
                is EngineState.Loading -> backendNote.setText(R.string.loading_model)
                is EngineState.Ready -> {
                    backendNote.text = s.note
                    if (model.guided == null) guided.isChecked = s.guidedByDefault // the sidecar's choice until the user's
                }
                is EngineState.Failed -> backendNote.text = s.message
            }
        }
        model.cutout.observe(this) { bmp ->
            imageView.setImageBitmap(bmp)
            saveButton.isEnabled = bmp != null
        }
        model.status.observe(this) { s ->
            status.text = s?.text ?: ""
            pickButton.isEnabled = s?.busy != true
        }
        model.toast.observe(this) { text ->
            if (text != null) {
                Toast.makeText(this, text, Toast.LENGTH_LONG).show()
                model.toastShown()
            }
        }
    }

    private fun checkerboardDrawable(): BitmapDrawable {
        val cell = (12 * resources.displayMetrics.density).toInt().coerceAtLeast(4)
        val tile = argbBitmap(Compositor.checkerboard(2 * cell, 2 * cell, cell, 0xFFFFFFFF.toInt(), 0xFFCCCCCC.toInt()), 2 * cell, 2 * cell)
        return BitmapDrawable(resources, tile).apply { setTileModeXY(Shader.TileMode.REPEAT, Shader.TileMode.REPEAT) }
    }
}
