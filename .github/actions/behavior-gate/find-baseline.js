'use strict';

/**
 * The newest run of `workflow` on `branch` that still holds the baseline artifact.
 *
 * Only runs of this repository that were not triggered by a pull request count:
 * a pull request's workflow file is the pull request's own, so a fork could
 * otherwise upload a poisoned baseline from a branch it names "main".
 *
 * Resolves to {runId, artifactId, headSha, createdAt}, or null when no run of the
 * last `maxRuns` has one (a first pull request, or artifacts that expired).
 */
async function findBaseline(github, context, { workflow, branch, name, maxRuns = 30 }) {
  const { owner, repo } = context.repo;
  const { data } = await github.rest.actions.listWorkflowRuns({
    owner,
    repo,
    workflow_id: workflow,
    branch,
    status: 'completed',
    per_page: maxRuns,
  });
  const fullName = `${owner}/${repo}`;
  for (const run of data.workflow_runs) {
    if (run.event === 'pull_request' || run.event === 'pull_request_target') {
      continue;
    }
    if (!run.head_repository || run.head_repository.full_name !== fullName) {
      continue;
    }
    const artifacts = await github.rest.actions.listWorkflowRunArtifacts({
      owner,
      repo,
      run_id: run.id,
      name,
      per_page: 10,
    });
    const artifact = artifacts.data.artifacts.find(
      (candidate) => candidate.name === name && !candidate.expired,
    );
    if (artifact !== undefined) {
      return {
        runId: run.id,
        artifactId: artifact.id,
        headSha: run.head_sha,
        createdAt: artifact.created_at,
      };
    }
  }
  return null;
}

module.exports = findBaseline;
module.exports.findBaseline = findBaseline;
