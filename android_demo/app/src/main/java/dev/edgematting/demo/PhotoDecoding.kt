package dev.edgematting.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.ImageDecoder
import android.media.ExifInterface
import android.net.Uri
import android.os.Build
import dev.edgematting.core.Orientation
import dev.edgematting.core.PhotoDecode

/** A decoded photo, upright, as ARGB ints (the Java core's input format). */
class DecodedPhoto(val argb: IntArray, val width: Int, val height: Int)

/**
 * Decodes [uri] upright with its long side at most [maxSide], never holding the full-size
 * image: the size arithmetic and the EXIF orientation are the core's (`PhotoDecode`,
 * `Orientation`, tested on the JVM against `imageops.decode_sample_size` / `bounded_size` /
 * `apply_exif_orientation`).
 *
 * * Android 9+: `ImageDecoder` with `setTargetSize(PhotoDecode.boundedSize(...))`; it applies
 *   the EXIF orientation itself.
 * * Android 7-8: `BitmapFactory` with `inSampleSize = PhotoDecode.sampleSize(...)` (a power of
 *   two that bounds the decoded long side), then the EXIF orientation (read with the
 *   framework's `ExifInterface(InputStream)`, API 24) applied by `Orientation`.
 */
fun decodePhoto(context: Context, uri: Uri, maxSide: Int): DecodedPhoto {
    val resolver = context.contentResolver
    var bitmap: Bitmap
    var orientation = Orientation.IDENTITY
    if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
        bitmap = ImageDecoder.decodeBitmap(ImageDecoder.createSource(resolver, uri)) { decoder, info, _ ->
            decoder.allocator = ImageDecoder.ALLOCATOR_SOFTWARE // getPixels needs a software bitmap
            val size = PhotoDecode.boundedSize(info.size.height, info.size.width, maxSide)
            if (size[0] != info.size.height || size[1] != info.size.width) decoder.setTargetSize(size[1], size[0])
        }
    } else {
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        resolver.openInputStream(uri).use { BitmapFactory.decodeStream(it, null, bounds) }
        if (bounds.outWidth <= 0 || bounds.outHeight <= 0) throw java.io.IOException("cannot decode $uri")
        val opts = BitmapFactory.Options().apply {
            inSampleSize = PhotoDecode.sampleSize(bounds.outHeight, bounds.outWidth, maxSide)
            inPreferredConfig = Bitmap.Config.ARGB_8888
        }
        bitmap = resolver.openInputStream(uri).use { BitmapFactory.decodeStream(it, null, opts) }
            ?: throw java.io.IOException("cannot decode $uri")
        val exif = try {
            resolver.openInputStream(uri)?.use { ExifInterface(it).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL) }
        } catch (e: java.io.IOException) {
            null // no readable EXIF: keep the image as stored
        }
        orientation = Orientation.fromExif(exif ?: ExifInterface.ORIENTATION_NORMAL)
    }
    // A decoder that rounds differently (or ignores the sample size) still ends within the bound.
    val bounded = PhotoDecode.boundedSize(bitmap.height, bitmap.width, maxSide)
    if (bounded[0] != bitmap.height || bounded[1] != bitmap.width) {
        val scaled = Bitmap.createScaledBitmap(bitmap, bounded[1], bounded[0], true)
        if (scaled !== bitmap) bitmap.recycle()
        bitmap = scaled
    }
    val w = bitmap.width
    val h = bitmap.height
    val argb = bitmap.argbPixels()
    bitmap.recycle()
    if (orientation === Orientation.IDENTITY) return DecodedPhoto(argb, w, h)
    return DecodedPhoto(orientation.apply(argb, w, h), orientation.outWidth(w, h), orientation.outHeight(w, h))
}

/** All pixels of a bitmap as ARGB ints (0xAARRGGBB), the Java core's input format. */
fun Bitmap.argbPixels(): IntArray = IntArray(width * height).also { getPixels(it, 0, width, 0, 0, width, height) }

/** A new ARGB_8888 bitmap holding [argb] (unpremultiplied colours, as Bitmap.setPixels takes them). */
fun argbBitmap(argb: IntArray, width: Int, height: Int, hasAlpha: Boolean = false): Bitmap =
    Bitmap.createBitmap(width, height, Bitmap.Config.ARGB_8888).apply {
        setHasAlpha(hasAlpha)
        setPixels(argb, 0, width, 0, 0, width, height)
    }
