package dev.edgematting.demo

import android.content.Context
import android.graphics.Bitmap
import android.os.SystemClock
import android.util.Log
import dev.edgematting.core.Json
import dev.edgematting.core.MetadataException
import dev.edgematting.core.ModelInput
import dev.edgematting.core.ModelMetadata
import dev.edgematting.core.ModelOutput
import java.io.Closeable
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate

/** Which screen a bundled model serves, as keyed in assets/models.json. */
enum class Role(val key: String) { CAMERA("camera"), PHOTO("photo") }

/** A model that could not be loaded; [message] is shown to the user as is. */
class ModelLoadException(message: String, cause: Throwable? = null) : Exception(message, cause)

/**
 * One bundled model: reads `models.json` -> the model file and its sidecar metadata, takes
 * the whole contract (size, channels, dtype, normalization, quantization, output meaning)
 * from the metadata through the Java core, checks it against the model's own tensors, and
 * runs it with the GPU delegate when the device supports it, else on the CPU (XNNPACK).
 *
 * Not thread-safe: use one engine from one thread (the camera's analysis thread, or the
 * photo screen's worker).
 */
class SegmentationEngine private constructor(
    val metadata: ModelMetadata,
    val modelFile: String,
    private val interpreter: Interpreter,
    private val gpuDelegate: GpuDelegate?,
    /** Human-readable backend, e.g. "GPU delegate" or "CPU (XNNPACK, 4 threads)". */
    val backend: String,
) : Closeable {

    private val input: ByteBuffer = ModelInput.allocate(metadata)
    private val output: ByteBuffer = ModelOutput.allocate(metadata)

    /** Milliseconds of the last [Interpreter.run] alone (no pre/post-processing). */
    var lastInferenceMs: Double = 0.0
        private set

    /** ARGB pixels (Bitmap.getPixels) of a width x height photo -> alpha in [0, 1] at photo size. */
    fun alpha(argb: IntArray, width: Int, height: Int): FloatArray {
        ModelInput.write(argb, width, height, metadata, input)
        output.rewind()
        val t0 = SystemClock.elapsedRealtimeNanos()
        interpreter.run(input, output)
        lastInferenceMs = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6
        output.rewind()
        return ModelOutput.toAlpha(output, metadata, width, height)
    }

    fun alpha(bitmap: Bitmap): FloatArray = alpha(bitmap.argbPixels(), bitmap.width, bitmap.height)

    override fun close() {
        interpreter.close()
        gpuDelegate?.close()
    }

    companion object {
        private const val TAG = "SegmentationEngine"
        private const val INDEX = "models.json"

        /** Loads the model bundled for [role]; throws [ModelLoadException] with a message for the user. */
        fun load(context: Context, role: Role, preferGpu: Boolean = true): SegmentationEngine {
            val assets = context.assets
            val indexText = try {
                assets.open(INDEX).bufferedReader().use { it.readText() }
            } catch (e: java.io.IOException) {
                throw ModelLoadException(context.getString(R.string.error_no_models), e)
            }
            val entry = try {
                val models = Json.parseObject(indexText)["models"] as? Map<*, *>
                models?.get(role.key) as? Map<*, *>
            } catch (e: Json.ParseException) {
                throw ModelLoadException("assets/$INDEX is not valid JSON: ${e.message}", e)
            } ?: throw ModelLoadException(context.getString(R.string.error_no_model_for_role, role.key))
            val file = entry["file"] as? String
                ?: throw ModelLoadException("assets/$INDEX: models.${role.key}.file is missing")
            val metaFile = entry["metadata"] as? String ?: "$file.json"

            val metadata = try {
                val text = assets.open(metaFile).bufferedReader().use { it.readText() }
                ModelMetadata.parse(text).requireTarget("tflite")
            } catch (e: java.io.IOException) {
                throw ModelLoadException("Metadata $metaFile is missing from the assets", e)
            } catch (e: MetadataException) {
                throw ModelLoadException("$metaFile: ${e.message}", e)
            }
            val model = mapAsset(context, file)

            val compat = CompatibilityList()
            if (preferGpu && compat.isDelegateSupportedOnThisDevice) {
                var delegate: GpuDelegate? = null
                try {
                    delegate = GpuDelegate(compat.bestOptionsForThisDevice)
                    val interpreter = Interpreter(model, Interpreter.Options().addDelegate(delegate))
                    checkTensors(interpreter, metadata, file)
                    return SegmentationEngine(metadata, file, interpreter, delegate, "GPU delegate")
                } catch (e: ModelLoadException) {
                    delegate?.close()
                    throw e
                } catch (e: Exception) {
                    // e.g. an op the GPU delegate cannot take: fall back to the CPU, and say so.
                    Log.w(TAG, "GPU delegate failed for $file, using the CPU", e)
                    delegate?.close()
                }
            }
            val threads = Runtime.getRuntime().availableProcessors().coerceIn(1, 4)
            val options = Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true)
            val interpreter = try {
                Interpreter(model, options)
            } catch (e: Exception) {
                throw ModelLoadException("LiteRT could not load $file: ${e.message}", e)
            }
            checkTensors(interpreter, metadata, file)
            val why = if (!preferGpu) "" else if (compat.isDelegateSupportedOnThisDevice) ", GPU delegate failed" else ", no supported GPU"
            return SegmentationEngine(metadata, file, interpreter, null, "CPU (XNNPACK, $threads threads$why)")
        }

        private fun mapAsset(context: Context, name: String): MappedByteBuffer = try {
            context.assets.openFd(name).use { fd ->
                FileInputStream(fd.fileDescriptor).use { stream ->
                    stream.channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
                }
            }
        } catch (e: java.io.IOException) {
            throw ModelLoadException("Model $name is missing from the assets (or stored compressed)", e)
        }

        /** The sidecar must describe the model it sits beside: compare shapes and types. */
        private fun checkTensors(interpreter: Interpreter, m: ModelMetadata, file: String) {
            val inT = interpreter.getInputTensor(0)
            val outT = interpreter.getOutputTensor(0)
            val wantIn = intArrayOf(1, m.inputHeight, m.inputWidth, m.inputChannels)
            val wantInType = when (m.inputDType!!) {
                ModelMetadata.DType.FLOAT32 -> DataType.FLOAT32
                ModelMetadata.DType.UINT8 -> DataType.UINT8
                ModelMetadata.DType.INT8 -> DataType.INT8
            }
            val wantOutType = when (m.outputDType!!) {
                ModelMetadata.DType.FLOAT32 -> DataType.FLOAT32
                ModelMetadata.DType.UINT8 -> DataType.UINT8
                ModelMetadata.DType.INT8 -> DataType.INT8
            }
            val problems = buildList {
                if (!inT.shape().contentEquals(wantIn)) add("input shape ${inT.shape().contentToString()} vs metadata ${wantIn.contentToString()}")
                if (inT.dataType() != wantInType) add("input type ${inT.dataType()} vs metadata ${m.inputDType.jsonName}")
                if (outT.numElements() != m.outputHeight * m.outputWidth) add("output has ${outT.numElements()} values, metadata says ${m.outputHeight}x${m.outputWidth}")
                if (outT.dataType() != wantOutType) add("output type ${outT.dataType()} vs metadata ${m.outputDType.jsonName}")
            }
            if (problems.isNotEmpty()) {
                interpreter.close()
                throw ModelLoadException("$file does not match its metadata: ${problems.joinToString("; ")}")
            }
        }
    }
}

/** All pixels of a bitmap as ARGB ints (0xAARRGGBB), the Java core's input format. */
fun Bitmap.argbPixels(): IntArray = IntArray(width * height).also { getPixels(it, 0, width, 0, 0, width, height) }

/** A new ARGB_8888 bitmap holding [argb] (unpremultiplied colours, as Bitmap.setPixels takes them). */
fun argbBitmap(argb: IntArray, width: Int, height: Int, hasAlpha: Boolean = false): Bitmap =
    Bitmap.createBitmap(width, height, Bitmap.Config.ARGB_8888).apply {
        setHasAlpha(hasAlpha)
        setPixels(argb, 0, width, 0, 0, width, height)
    }
