package dev.edgematting.demo

import android.app.Application
import android.util.Log
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.LiveData
import androidx.lifecycle.MutableLiveData
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.RejectedExecutionException

/** Where a screen's model stands. */
sealed class EngineState {
    object Loading : EngineState()
    /** Loaded: [note] says which backend runs which model; [guidedByDefault]: the sidecar asks for the guided filter. */
    class Ready(val note: String, val guidedByDefault: Boolean) : EngineState()
    class Failed(val message: String) : EngineState()
}

/**
 * Owns one screen's [SegmentationEngine] and the single worker thread that loads, runs and
 * closes it. A ViewModel outlives the activity across rotations (no reload, results kept)
 * and is cleared only when the screen is left for good; then the engine is closed on the
 * worker, after whatever was queued (a load still running included), so the interpreter and
 * GPU delegate are always freed.
 *
 * Every task runs inside [work]: an exception (or running out of memory) is reported through
 * [onTaskError] instead of killing the process. Tasks run in order, so a photo picked while
 * the model loads is processed once it is loaded, not refused.
 */
abstract class EngineViewModel(app: Application, private val role: Role) : AndroidViewModel(app) {
    private val worker: ExecutorService = Executors.newSingleThreadExecutor { r -> Thread(r, "edgematting-${role.key}") }

    /** Touched only on the worker thread. */
    protected var engine: SegmentationEngine? = null
        private set

    private val _state = MutableLiveData<EngineState>(EngineState.Loading)
    val state: LiveData<EngineState> get() = _state

    /** The worker, for CameraX's analyzer (it must run where the engine lives). */
    val executor: ExecutorService get() = worker

    /** Why the load failed (set on the worker), for tasks that need the engine. */
    @Volatile private var loadError: String? = null

    /**
     * Queues the model load. Subclasses call it last in their `init`, so the worker never
     * calls back into a half-constructed subclass.
     */
    protected fun startLoading() {
        work {
            val eng = try {
                SegmentationEngine.load(getApplication(), role)
            } catch (e: ModelLoadException) {
                loadError = e.message ?: e.toString()
                _state.postValue(EngineState.Failed(loadError!!))
                return@work
            } catch (e: Exception) { // never leave the screen at "Loading model..."
                Log.e(TAG, "${role.key} model load failed", e)
                loadError = e.message ?: e.toString()
                _state.postValue(EngineState.Failed(loadError!!))
                return@work
            } catch (e: LinkageError) { // a native library missing on this device (the CPU path failed too)
                Log.e(TAG, "${role.key} model load failed", e)
                loadError = e.message ?: e.toString()
                _state.postValue(EngineState.Failed(loadError!!))
                return@work
            }
            engine = eng // set on the worker: tasks queued after this one see it, and so does onCleared's close
            val note = getApplication<Application>().getString(
                R.string.backend_note, eng.backend, eng.modelFile,
                eng.metadata.inputWidth, eng.metadata.inputHeight, eng.metadata.inputDType.jsonName,
            )
            onEngineReady(eng)
            _state.postValue(EngineState.Ready(note, eng.metadata.guidedFilter != null))
        }
    }

    /** Called on the worker once the engine is loaded. */
    protected open fun onEngineReady(engine: SegmentationEngine) {}

    /** Called on the worker when a task failed; [message] is for the user. */
    protected abstract fun onTaskError(message: String)

    /**
     * Runs [task] on the worker; failures are caught and reported. Returns false when the
     * screen is already gone (the worker shut down).
     */
    fun work(task: () -> Unit): Boolean = try {
        worker.execute {
            try {
                task()
            } catch (e: OutOfMemoryError) {
                Log.e(TAG, "out of memory in a ${role.key} task", e)
                onTaskError(getApplication<Application>().getString(R.string.error_memory))
            } catch (e: Exception) {
                Log.e(TAG, "${role.key} task failed", e)
                onTaskError(e.message ?: e.toString())
            } catch (e: LinkageError) { // e.g. a native library of the GPU delegate missing on this device
                Log.e(TAG, "${role.key} task failed", e)
                onTaskError(e.message ?: e.toString())
            }
        }
        true
    } catch (e: RejectedExecutionException) {
        false
    }

    /** The engine, or an exception saying why there is none (the load's own error when it failed). */
    protected fun requireEngine(): SegmentationEngine {
        engine?.let { return it }
        throw IllegalStateException(loadError ?: "the model is not loaded")
    }

    override fun onCleared() {
        work {
            engine?.close()
            engine = null
        }
        worker.shutdown()
    }

    companion object {
        private const val TAG = "EngineViewModel"
    }
}
