//! The store as the mapper's [`ArtifactSource`]: the uploaded files of `store::artifacts`.

use super::{Artifact, ArtifactSource, Want};
use crate::model::artifact::{ArtifactKind, StoredArtifact};
use crate::store::Store;

fn artifact(a: StoredArtifact) -> Artifact {
    Artifact {
        url: a.url,
        is_map: a.kind == ArtifactKind::SourceMap,
        debug_id: a.debug_id,
        sourcemap: a.sourcemap,
        data: a.data,
    }
}

impl ArtifactSource for Store {
    async fn by_debug_id(
        &self,
        project: i64,
        debug_id: &str,
        want: Want,
    ) -> Result<Option<Artifact>, String> {
        let kind = match want {
            Want::MinifiedSource => ArtifactKind::MinifiedSource,
            Want::SourceMap => ArtifactKind::SourceMap,
        };
        self.artifact_by_debug_id(project, debug_id, kind)
            .await
            .map(|a| a.map(artifact))
            .map_err(|e| format!("reading uploaded files failed: {e}"))
    }

    async fn by_url(
        &self,
        project: i64,
        release: &str,
        dist: Option<&str>,
        url: &str,
    ) -> Result<Option<Artifact>, String> {
        self.artifact_by_url(project, release, dist, url)
            .await
            .map(|a| a.map(artifact))
            .map_err(|e| format!("reading uploaded files failed: {e}"))
    }

    async fn changed_at(&self, project: i64) -> Result<Option<i64>, String> {
        self.artifacts_changed_at(project)
            .await
            .map(|at| at.map(|m| m.0))
            .map_err(|e| format!("reading uploaded files failed: {e}"))
    }
}
