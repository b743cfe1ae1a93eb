package dev.edgematting.demo

import android.content.ContentValues
import android.content.Context
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.ImageDecoder
import android.graphics.Shader
import android.graphics.drawable.BitmapDrawable
import android.net.Uri
import android.os.Build
import android.os.Bundle
import android.os.Environment
import android.provider.MediaStore
import android.widget.Button
import android.widget.ImageView
import android.widget.TextView
import android.widget.Toast
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import dev.edgematting.core.Compositor
import java.io.File
import java.io.FileOutputStream
import java.util.Locale
import java.util.concurrent.Executors

/**
 * Still photo: pick from the gallery, run MattingNet (the "photo" model), show the cut-out over
 * a checkerboard and save it as a transparent PNG (MediaStore on Android 10+, the app's
 * pictures folder before).
 */
class PhotoActivity : AppCompatActivity() {
    private lateinit var imageView: ImageView
    private lateinit var status: TextView
    private lateinit var saveButton: Button
    private val worker = Executors.newSingleThreadExecutor()
    // set on the UI thread once loaded; inference and close() run on the worker
    @Volatile private var engine: SegmentationEngine? = null
    private var cutout: Bitmap? = null

    private val pickPhoto = registerForActivityResult(ActivityResultContracts.GetContent()) { uri: Uri? ->
        if (uri != null) process(uri)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_photo)
        imageView = findViewById(R.id.photo_output)
        status = findViewById(R.id.photo_status)
        saveButton = findViewById(R.id.button_save)
        imageView.background = checkerboardDrawable()
        saveButton.isEnabled = false
        findViewById<Button>(R.id.button_pick).setOnClickListener { pickPhoto.launch("image/*") }
        saveButton.setOnClickListener { cutout?.let(::save) }
        worker.execute {
            val result = runCatching { SegmentationEngine.load(this, Role.PHOTO) }
            runOnUiThread {
                result.onSuccess {
                    engine = it
                    status.text = getString(R.string.backend_note, it.backend, it.modelFile,
                        it.metadata.inputWidth, it.metadata.inputHeight, it.metadata.inputDType.jsonName)
                }.onFailure { status.text = it.message }
            }
        }
    }

    private fun process(uri: Uri) {
        status.setText(R.string.working)
        saveButton.isEnabled = false
        worker.execute {
            val eng = engine
            val result = runCatching {
                checkNotNull(eng) { getString(R.string.error_no_model_for_role, Role.PHOTO.key) }
                val photo = decodeBitmap(this, uri, maxSide = 2048)
                val argb = photo.argbPixels()
                val t0 = System.nanoTime()
                val alpha = eng.alpha(argb, photo.width, photo.height)
                val bmp = argbBitmap(Compositor.cutout(argb, alpha, photo.width, photo.height), photo.width, photo.height, hasAlpha = true)
                Triple(bmp, eng.lastInferenceMs, (System.nanoTime() - t0) / 1e6)
            }
            runOnUiThread {
                result.onSuccess { (bmp, inferMs, totalMs) ->
                    cutout = bmp
                    imageView.setImageBitmap(bmp)
                    saveButton.isEnabled = true
                    status.text = String.format(Locale.US, getString(R.string.photo_stats), inferMs, totalMs, bmp.width, bmp.height, eng!!.backend)
                }.onFailure { status.text = it.message ?: getString(R.string.error_decode) }
            }
        }
    }

    private fun save(bmp: Bitmap) {
        val name = "cutout_${System.currentTimeMillis()}.png"
        worker.execute {
            val where = runCatching {
                if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) {
                    val values = ContentValues().apply {
                        put(MediaStore.Images.Media.DISPLAY_NAME, name)
                        put(MediaStore.Images.Media.MIME_TYPE, "image/png")
                        put(MediaStore.Images.Media.RELATIVE_PATH, Environment.DIRECTORY_PICTURES + "/edgematting")
                        put(MediaStore.Images.Media.IS_PENDING, 1)
                    }
                    val resolver = contentResolver
                    val uri = checkNotNull(resolver.insert(MediaStore.Images.Media.EXTERNAL_CONTENT_URI, values)) { "MediaStore refused the file" }
                    try {
                        resolver.openOutputStream(uri).use { out ->
                            check(out != null && bmp.compress(Bitmap.CompressFormat.PNG, 100, out)) { "PNG encoding failed" }
                        }
                        values.clear()
                        values.put(MediaStore.Images.Media.IS_PENDING, 0)
                        resolver.update(uri, values, null, null)
                    } catch (e: Exception) {
                        resolver.delete(uri, null, null) // no half-written entry in the gallery
                        throw e
                    }
                    "Pictures/edgematting/$name"
                } else {
                    // Before Android 10: the app's own pictures folder (no storage permission needed).
                    val dir = checkNotNull(getExternalFilesDir(Environment.DIRECTORY_PICTURES)) { "no external storage" }
                    val tmp = File(dir, "$name.part")
                    FileOutputStream(tmp).use { check(bmp.compress(Bitmap.CompressFormat.PNG, 100, it)) { "PNG encoding failed" } }
                    val file = File(dir, name)
                    check(tmp.renameTo(file)) { "could not write $file" }
                    file.absolutePath
                }
            }
            runOnUiThread {
                where.onSuccess { Toast.makeText(this, getString(R.string.saved, it), Toast.LENGTH_LONG).show() }
                    .onFailure { Toast.makeText(this, getString(R.string.save_failed, it.message), Toast.LENGTH_LONG).show() }
            }
        }
    }

    private fun checkerboardDrawable(): BitmapDrawable {
        val cell = (12 * resources.displayMetrics.density).toInt().coerceAtLeast(4)
        val tile = argbBitmap(Compositor.checkerboard(2 * cell, 2 * cell, cell, 0xFFFFFFFF.toInt(), 0xFFCCCCCC.toInt()), 2 * cell, 2 * cell)
        return BitmapDrawable(resources, tile).apply { setTileModeXY(Shader.TileMode.REPEAT, Shader.TileMode.REPEAT) }
    }

    override fun onDestroy() {
        super.onDestroy()
        worker.execute { engine?.close(); engine = null }
        worker.shutdown()
    }
}

/** Decodes [uri] into an ARGB_8888 software bitmap, downscaled so its long side <= [maxSide]. */
fun decodeBitmap(context: Context, uri: Uri, maxSide: Int): Bitmap {
    val resolver = context.contentResolver
    val decoded: Bitmap = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
        ImageDecoder.decodeBitmap(ImageDecoder.createSource(resolver, uri)) { decoder, info, _ ->
            decoder.allocator = ImageDecoder.ALLOCATOR_SOFTWARE // getPixels needs a software bitmap
            val long = maxOf(info.size.width, info.size.height)
            if (long > maxSide) {
                val s = maxSide.toDouble() / long
                decoder.setTargetSize((info.size.width * s).toInt().coerceAtLeast(1), (info.size.height * s).toInt().coerceAtLeast(1))
            }
        }
    } else {
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        resolver.openInputStream(uri).use { BitmapFactory.decodeStream(it, null, bounds) }
        var sample = 1
        while (maxOf(bounds.outWidth, bounds.outHeight) / (sample * 2) >= maxSide) sample *= 2
        val opts = BitmapFactory.Options().apply {
            inSampleSize = sample
            inPreferredConfig = Bitmap.Config.ARGB_8888
        }
        checkNotNull(resolver.openInputStream(uri).use { BitmapFactory.decodeStream(it, null, opts) }) { "cannot decode $uri" }
    }
    return if (decoded.config == Bitmap.Config.ARGB_8888) decoded else decoded.copy(Bitmap.Config.ARGB_8888, false)
}
