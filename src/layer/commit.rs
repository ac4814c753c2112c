//! A layer tree → its layer commit, with what the tree cannot express in its metadata.

use ostree::glib;

use super::{LayerBuilder, LayerSource, Skipped, ostree_err, rules, tarsplit};
use crate::error::LayerError;
use crate::meta;

impl LayerBuilder<'_> {
    /// Writes the tree and the layer commit; returns its checksum and the skipped entries.
    ///
    /// # Errors
    /// libostree fails.
    pub fn commit(mut self, source: &LayerSource) -> Result<(String, Vec<Skipped>), LayerError> {
        self.resolve_pending_links()?;
        let none: &[String] = &[];
        let err = |op| ostree_err(none, op);
        let dict = glib::VariantDict::new(None);
        dict.insert(meta::LAYER_DIGEST, source.digest.as_str());
        dict.insert(meta::LAYER_DIFF_ID, source.diff_id.as_str());
        dict.insert(meta::LAYER_MEDIA_TYPE, source.media_type.as_str());
        dict.insert(meta::LAYER_WHITEOUTS, &self.whiteouts);
        dict.insert(
            meta::LAYER_IMPLICIT_DIRS,
            self.implicit.iter().cloned().collect::<Vec<_>>(),
        );
        dict.insert(meta::LAYER_LINKS, &self.external_links);
        // Only when there are any: every other layer commit stays as it was.
        if !self.forward_links.is_empty() {
            dict.insert(meta::LAYER_FORWARD_LINKS, &self.forward_links);
        }
        if !self.early_links.is_empty() {
            dict.insert(meta::LAYER_EARLY_LINKS, &self.early_links);
        }
        if !self.replaced_dirs.is_empty() {
            let dirs: Vec<String> = self.replaced_dirs.iter().cloned().collect();
            dict.insert(meta::LAYER_REPLACED_DIRS, dirs);
        }
        if !self.late_dirs.is_empty() {
            let dirs: Vec<String> = self.late_dirs.iter().cloned().collect();
            dict.insert(meta::LAYER_LATE_DIRS, dirs);
        }
        let skipped: Vec<(String, String)> = self
            .skipped
            .iter()
            .map(|s| (s.path.clone(), s.kind.clone()))
            .collect();
        dict.insert(meta::LAYER_SKIPPED, &skipped);
        // array_from_fixed_array: one serialised `ay`, not one child variant per byte.
        dict.insert_value(
            meta::LAYER_TAR_SPLIT,
            &glib::Variant::array_from_fixed_array(&self.tar_split),
        );
        dict.insert(meta::LAYER_TAR_SPLIT_VERSION, tarsplit::VERSION);
        dict.insert(meta::LAYER_RULES, rules::VERSION);
        if let Some((records, format)) = &self.exact_gzip {
            dict.insert_value(
                meta::LAYER_EXACT_GZIP,
                &glib::Variant::array_from_fixed_array(records),
            );
            dict.insert(meta::LAYER_EXACT_GZIP_FORMAT, format);
        }
        let refs = [
            crate::refname::blob_ref(source.digest.as_str()),
            crate::refname::diffid_ref(source.diff_id.as_str()),
        ];
        crate::repo::collection::bind(self.repo, &dict, &refs);
        let subject = format!("layer {}", source.digest);
        let commit = crate::repo::write_tree_commit(self.repo, &self.root, &subject, &dict, 0)
            .map_err(err("writing layer commit"))?;
        Ok((commit, self.skipped))
    }
}
