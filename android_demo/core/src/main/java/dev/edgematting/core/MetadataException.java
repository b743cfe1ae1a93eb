package dev.edgematting.core;

/**
 * The model metadata (the sidecar JSON that {@code edgematting convert} writes beside the
 * model) is missing a key or has a value the core cannot use. {@link #key()} names the
 * offending key as a dotted path, e.g. {@code "input.dtype"}.
 */
public final class MetadataException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final String key;

    public MetadataException(String key, String problem) {
        super("model metadata key '" + key + "': " + problem
                + " (re-export the model with `edgematting convert`, which writes a valid sidecar)");
        this.key = key;
    }

    /** The offending key, as a dotted path ("input", "input.channels", "output.height", ...). */
    public String key() {
        return key;
    }
}
