pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google() // LiteRT (com.google.ai.edge.litert), CameraX, AndroidX
        mavenCentral()
    }
}

rootProject.name = "edgematting-demo"
include(":app")
include(":core") // plain Java 17, no Android dependency: the image logic tested on the JVM
