"""sweeptrainer's Hydra plugins: Hydra accepts a plugin class only from the ``hydra_plugins``
namespace (the command registers them itself, see ``launchers.register``)."""
