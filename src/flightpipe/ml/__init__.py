"""The arrival-delay model: features from the warehouse, training, registry, prediction.

Submodules are imported where used: scikit-learn is slow to import and the CLI loads this
package on every command.
"""
