//! Selectors: which clusters a ClusterUpgrade or a schedule applies to.
