package dev.edgematting.demo

import android.app.Application
import android.content.ContentValues
import android.graphics.Bitmap
import android.net.Uri
import android.os.Build
import android.os.Environment
import android.provider.MediaStore
import androidx.lifecycle.LiveData
import androidx.lifecycle.MutableLiveData
import dev.edgematting.core.Comic
import dev.edgematting.core.GuidedFilter
import java.io.File
import java.io.FileOutputStream
import java.util.Locale

/**
 * The photo screen's state, kept across rotations: the model, the last photo and its
 * cut-out (or, with the comic effect on, the photo with the person in comic style).
 * Decoding, inference, compositing and saving run on the engine's worker.
 */
class PhotoViewModel(app: Application) : EngineViewModel(app, Role.PHOTO) {
    /** What the screen shows below the backend note. */
    class Status(val text: String, val busy: Boolean)

    private val _cutout = MutableLiveData<Bitmap?>(null)
    val cutout: LiveData<Bitmap?> get() = _cutout
    private val _status = MutableLiveData<Status?>(null)
    val status: LiveData<Status?> get() = _status
    private val _toast = MutableLiveData<String?>(null)
    /** One-shot messages (saved / could not save); the activity calls [toastShown]. */
    val toast: LiveData<String?> get() = _toast

    /** Guided-filter upsampling of the alpha (edge-aware); null until the user or the sidecar decides. */
    @Volatile var guided: Boolean? = null
        private set
    /**
     * Comic effect: the result is the whole photo with the person in comic style (core
     * [Comic.comic], bit-exact with `imageops.comic`), opaque, instead of the transparent cut-out.
     */
    @Volatile var comic: Boolean = false
        private set
    /** The last decoded photo (worker thread only), to redo the result when [setGuided] or [setComic] changes. */
    private var photo: DecodedPhoto? = null

    init {
        startLoading()
    }

    override fun onTaskError(message: String) {
        _status.postValue(Status(message, busy = false))
    }

    /** Turns the guided filter on or off, and redoes the current photo's cut-out. */
    fun setGuided(on: Boolean) {
        if (guided == on) return
        guided = on
        work { photo?.let { cutOut(it) } }
    }

    /** Turns the comic effect on or off, and redoes the current photo's result. */
    fun setComic(on: Boolean) {
        if (comic == on) return
        comic = on
        work { photo?.let { cutOut(it) } }
    }

    fun process(uri: Uri) {
        _status.value = Status(getApplication<Application>().getString(R.string.working), busy = true)
        val queued = work {
            requireEngine() // a failed load says why, here
            val p = try {
                decodePhoto(getApplication(), uri, MAX_SIDE)
            } catch (e: java.io.IOException) {
                throw IllegalArgumentException(getApplication<Application>().getString(R.string.error_decode), e)
            }
            photo = p
            cutOut(p)
        }
        if (!queued) _status.value = null
    }

    /**
     * On the worker: alpha (plain or guided, parameters from the sidecar or the defaults) ->
     * the cut-out bitmap, or with [comic] the photo with the person in comic style.
     */
    private fun cutOut(p: DecodedPhoto) {
        val eng = requireEngine()
        val useGuided = guided ?: (eng.metadata.guidedFilter != null)
        val useComic = comic
        eng.processor.setGuidedFilter(if (useGuided) eng.metadata.guidedFilter ?: GuidedFilter.defaults() else null)
        val t0 = System.nanoTime()
        val alpha = eng.alpha(p.argb, p.width, p.height) // a photo: a prior-frame model gets zeros (no previous frame)
        val bmp = if (useComic) {
            argbBitmap(Comic.comic(p.argb, alpha, p.width, p.height), p.width, p.height, hasAlpha = false)
        } else {
            argbBitmap(eng.processor.cutout(), p.width, p.height, hasAlpha = true)
        }
        val totalMs = (System.nanoTime() - t0) / 1e6
        val app = getApplication<Application>()
        var edges = app.getString(if (useGuided) R.string.edges_guided else R.string.edges_bilinear)
        if (useComic) edges += " · " + app.getString(R.string.effect_comic)
        _cutout.postValue(bmp)
        _status.postValue(Status(String.format(Locale.US, app.getString(R.string.photo_stats), eng.lastInferenceMs, totalMs,
            p.width, p.height, eng.backend, edges), busy = false))
    }

    fun save() {
        val bmp = _cutout.value ?: return
        val name = "${if (comic) "comic" else "cutout"}_${System.currentTimeMillis()}.png"
        val app = getApplication<Application>()
        work {
            val where = runCatching { savePng(bmp, name) }
            _toast.postValue(where.fold({ app.getString(R.string.saved, it) }, { app.getString(R.string.save_failed, it.message) }))
        }
    }

    fun toastShown() {
        _toast.value = null
    }

    private fun savePng(bmp: Bitmap, name: String): String {
        val app = getApplication<Application>()
        return if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) {
            val values = ContentValues().apply {
                put(MediaStore.Images.Media.DISPLAY_NAME, name)
                put(MediaStore.Images.Media.MIME_TYPE, "image/png")
                put(MediaStore.Images.Media.RELATIVE_PATH, Environment.DIRECTORY_PICTURES + "/edgematting")
                put(MediaStore.Images.Media.IS_PENDING, 1)
            }
            val resolver = app.contentResolver
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
            val dir = checkNotNull(app.getExternalFilesDir(Environment.DIRECTORY_PICTURES)) { "no external storage" }
            val tmp = File(dir, "$name.part")
            FileOutputStream(tmp).use { check(bmp.compress(Bitmap.CompressFormat.PNG, 100, it)) { "PNG encoding failed" } }
            val file = File(dir, name)
            check(tmp.renameTo(file)) { "could not write $file" }
            file.absolutePath
        }
    }

    companion object {
        /** Long side of the decoded photo: the cut-out's resolution (bounded decode, see decodePhoto). */
        const val MAX_SIDE = 2048
    }
}
