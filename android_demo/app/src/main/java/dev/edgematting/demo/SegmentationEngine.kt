package dev.edgematting.demo

import android.content.Context
import android.os.SystemClock
import android.util.Log
import dev.edgematting.core.FrameProcessor
import dev.edgematting.core.Json
import dev.edgematting.core.MetadataException
import dev.edgematting.core.ModelMetadata
import dev.edgematting.core.TensorCheck
import java.io.Closeable
import java.io.FileInputStream
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import java.util.Locale
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import org.tensorflow.lite.gpu.GpuDelegateFactory

/** Which screen a bundled model serves, as keyed in assets/models.json. */
enum class Role(val key: String) { CAMERA("camera"), PHOTO("photo") }

/** A model that could not be loaded; [message] is shown to the user as is. */
class ModelLoadException(message: String, cause: Throwable? = null) : Exception(message, cause)

/**
 * One bundled model: reads `models.json` -> the model file and its sidecar metadata, takes
 * the whole contract (size, channels, dtype, normalization, quantization, output meaning,
 * optional guided filter) from the metadata through the Java core, checks it against the
 * model's own tensors (shape, type, quantization: core `TensorCheck`), and runs it with the
 * GPU delegate when the device supports it, else on the CPU (XNNPACK).
 *
 * Pre- and post-processing are the core's [FrameProcessor], whose buffers (input and output
 * tensors included) are reused from one frame to the next.
 *
 * Not thread-safe: use one engine from one thread (the screen's single worker thread), and
 * close it on that thread.
 */
class SegmentationEngine private constructor(
    val metadata: ModelMetadata,
    val modelFile: String,
    private val interpreter: Interpreter,
    private val gpuDelegate: GpuDelegate?,
    /** Human-readable backend, e.g. "GPU delegate" or "CPU (XNNPACK, 4 threads)". */
    val backend: String,
) : Closeable {

    /** The core pipeline around the interpreter; its buffers live as long as the engine. */
    val processor = FrameProcessor(metadata)

    /** Milliseconds of the last [Interpreter.run] alone (no pre/post-processing). */
    var lastInferenceMs: Double = 0.0
        private set

    private var closed = false

    /**
     * ARGB pixels (Bitmap.getPixels) of a width x height image -> alpha in [0, 1] at that size
     * (the processor's array: valid until the next call). Then [processor] composites it.
     *
     * [stream]: a camera frame. A prior-frame model (sidecar channel order "RGB+prior") is then
     * given the alpha it output for the previous frame (core `FrameProcessor.prepareFrame`;
     * zeros on a stream's first frame); a photo (false) always gets zeros.
     */
    fun alpha(argb: IntArray, width: Int, height: Int, stream: Boolean = false): FloatArray {
        check(!closed) { "the model was closed" }
        if (stream) processor.prepareFrame(argb, width, height) else processor.prepare(argb, width, height)
        val output = processor.output()
        output.rewind() // LiteRT writes the output tensor from the buffer's position
        val t0 = SystemClock.elapsedRealtimeNanos()
        interpreter.run(processor.input(), output)
        lastInferenceMs = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6
        return processor.alpha()
    }

    override fun close() {
        if (closed) return
        closed = true
        interpreter.close()
        gpuDelegate?.close()
    }

    companion object {
        private const val TAG = "SegmentationEngine"
        private const val INDEX = "models.json"

        /**
         * Loads the model bundled for [role]; throws [ModelLoadException] with a message for
         * the user. The camera's stream asks the GPU delegate for sustained speed, a photo for
         * a fast single answer.
         */
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

            // CompatibilityList holds a native handle: closed on every path. Creating it, or the
            // delegate, throws UnsatisfiedLinkError (a LinkageError, not an Exception) where the GPU
            // delegate's native library is missing: that falls back to the CPU too, and says so.
            var gpuSupported = false
            var gpuFailed = false
            if (preferGpu) {
                try {
                    val compat = CompatibilityList()
                    try {
                        gpuSupported = compat.isDelegateSupportedOnThisDevice
                        if (gpuSupported) {
                            var delegate: GpuDelegate? = null
                            var interpreter: Interpreter? = null
                            try {
                                val options = compat.bestOptionsForThisDevice
                                options.setInferencePreference(
                                    if (role == Role.CAMERA) GpuDelegateFactory.Options.INFERENCE_PREFERENCE_SUSTAINED_SPEED
                                    else GpuDelegateFactory.Options.INFERENCE_PREFERENCE_FAST_SINGLE_ANSWER
                                )
                                delegate = GpuDelegate(options)
                                interpreter = Interpreter(model, Interpreter.Options().addDelegate(delegate))
                                checkTensors(interpreter, metadata, file)
                                return SegmentationEngine(metadata, file, interpreter, delegate, "GPU delegate")
                            } catch (e: ModelLoadException) {
                                interpreter?.close()
                                delegate?.close()
                                throw e
                            } catch (e: Exception) {
                                // e.g. an op the GPU delegate cannot take: fall back to the CPU, and say so.
                                Log.w(TAG, "GPU delegate failed for $file, using the CPU", e)
                                interpreter?.close()
                                delegate?.close()
                                gpuFailed = true
                            } catch (e: LinkageError) {
                                Log.w(TAG, "GPU delegate library failed to load for $file, using the CPU", e)
                                interpreter?.close()
                                delegate?.close()
                                gpuFailed = true
                            }
                        }
                    } finally {
                        compat.close()
                    }
                } catch (e: LinkageError) {
                    Log.w(TAG, "GPU delegate library failed to load, using the CPU", e)
                    gpuFailed = true
                }
            }
            val threads = Runtime.getRuntime().availableProcessors().coerceIn(1, 4)
            val options = Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true)
            val interpreter = try {
                Interpreter(model, options)
            } catch (e: Exception) {
                throw ModelLoadException("LiteRT could not load $file: ${e.message}", e)
            }
            try {
                checkTensors(interpreter, metadata, file)
            } catch (e: ModelLoadException) {
                interpreter.close()
                throw e
            }
            val why = if (!preferGpu) "" else if (gpuFailed) ", GPU delegate failed" else ", no supported GPU"
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

        private fun typeName(t: DataType): String = when (t) {
            DataType.FLOAT32 -> "float32"
            DataType.UINT8 -> "uint8"
            DataType.INT8 -> "int8"
            else -> t.toString().lowercase(Locale.ROOT)
        }

        /**
         * The sidecar must describe the model it sits beside: shapes, types and quantization
         * (scale, zero point) compared by the core's TensorCheck, the twin of the Python
         * runner's check. A mismatch is refused with every difference named.
         */
        private fun checkTensors(interpreter: Interpreter, m: ModelMetadata, file: String) {
            val inT: Tensor = interpreter.getInputTensor(0)
            val outT: Tensor = interpreter.getOutputTensor(0)
            val inQ = inT.quantizationParams()
            val outQ = outT.quantizationParams()
            val problems = TensorCheck.check(
                m, inT.shape(), typeName(inT.dataType()), inQ.scale, inQ.zeroPoint,
                outT.numElements(), typeName(outT.dataType()), outQ.scale, outQ.zeroPoint,
            )
            if (problems.isNotEmpty()) {
                throw ModelLoadException("$file does not match its metadata: ${problems.joinToString("; ")}")
            }
        }
    }
}
