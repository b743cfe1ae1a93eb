// The demo's image logic: bitmap pixels -> model input, model output -> alpha (plain or
// guided filter), compositing, metadata parsing, tensor checks, bounded photo decoding,
// orientation, and a frame processor that reuses its buffers. Plain Java 17 with no Android
// dependency, so the same code runs in the app and in JVM unit tests against the Python
// goldens. CI also compiles it with plain javac + JUnit 4 (tests/test_android_core.py).
plugins {
    `java-library`
}

// No toolchain: whichever JDK runs Gradle (17 or newer, e.g. Android Studio's bundled JDK 21)
// compiles for the Java 17 language, API and bytecode with `--release 17`, as CI's javac does.
// (A toolchain request for 17 fails on machines that only have JDK 21 and no resolver.)
java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

tasks.withType<JavaCompile>().configureEach {
    options.release.set(17)
    options.encoding = "UTF-8"
    options.compilerArgs.add("-Xlint:all")
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}

// Golden vectors from the Python reference (tests/android_golden.py), written before the
// tests unless -PgoldenDir=DIR points at ones written already. The Python interpreter is
// -Ppython=PATH, else the repository's .venv (python3.11 -m venv .venv && .venv/bin/pip
// install -e ".[dev]", see the top-level README), else python3 on the PATH.
val repoRoot: File = rootDir.parentFile
val goldenOverride = providers.gradleProperty("goldenDir")
val generatedGoldens = layout.buildDirectory.dir("golden")
val python: String = providers.gradleProperty("python").orNull
    ?: listOf(".venv/bin/python", ".venv/Scripts/python.exe").map { repoRoot.resolve(it) }.firstOrNull { it.isFile }?.path
    ?: "python3"

val writeGoldens by tasks.registering(Exec::class) {
    description = "Writes the Python golden vectors that GoldenVectorsTest compares the core with."
    workingDir = repoRoot
    val out = generatedGoldens.get().asFile
    commandLine(python, "tests/android_golden.py", out.absolutePath)
    inputs.files(
        repoRoot.resolve("tests/android_golden.py"),
        repoRoot.resolve("edgematting/imageops.py"),
        repoRoot.resolve("edgematting/contract.py"),
        repoRoot.resolve("edgematting/runners/tflite.py"),
    )
    outputs.dir(out)
}

tasks.test {
    if (goldenOverride.isPresent) {
        systemProperty("golden.dir", file(goldenOverride.get()).absolutePath)
    } else {
        dependsOn(writeGoldens)
        systemProperty("golden.dir", generatedGoldens.get().asFile.absolutePath)
    }
    maxHeapSize = "512m"
    testLogging {
        showStandardStreams = true
        events("passed", "skipped", "failed")
    }
}
