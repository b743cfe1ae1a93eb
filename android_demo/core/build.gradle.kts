// The demo's image logic: bitmap pixels -> model input, model output -> alpha, compositing,
// metadata parsing. Plain Java 17 with no Android dependency, so the same code runs in the
// app and in JVM unit tests against the Python goldens (CI compiles it with plain javac; see
// tests/test_android_core.py).
plugins {
    `java-library`
}

java {
    toolchain {
        languageVersion.set(JavaLanguageVersion.of(17))
    }
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    // Golden vectors from the Python side:
    //   python -c "from edgematting.android import write_golden_vectors as w; w('android_demo/core/build/golden')"
    // Without them GoldenVectorsTest is skipped (assumption) and only the other tests run.
    val golden = (project.findProperty("goldenDir") as String?)
        ?: layout.buildDirectory.dir("golden").get().asFile.absolutePath
    systemProperty("golden.dir", golden)
    testLogging { showStandardStreams = true }
}
