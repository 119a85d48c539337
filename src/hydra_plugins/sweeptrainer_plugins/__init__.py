"""sweeptrainer's Hydra plugins: Hydra accepts a plugin class only from the ``hydra_plugins``
namespace (the command registers them itself: ``sweeptrainer.sweep.launch.register_plugins``
and ``searchpath.user_folder``)."""
