'use strict';

/**
 * Post the behavior comment on a pull request, or update the one already there.
 *
 * The comment is found by its marker: the first line of `body` (an HTML comment,
 * `<!-- pytest-behavior -->`, which pytest_behavior.report.pr_comment writes), on a
 * comment written by `options.author` (the account the token acts as; by default
 * the Actions bot). A comment by anybody else is never edited, even if it starts
 * with the marker: a pull request author could otherwise plant one and edit the
 * verdict afterwards.
 *
 * Called from actions/github-script as `upsertComment(github, context, body)`.
 * Resolves to {action: 'created' | 'updated' | 'unchanged', id, url}.
 */
async function upsertComment(github, context, body, options = {}) {
  const author = options.author || 'github-actions[bot]';
  const marker = body.split('\n', 1)[0].trim();
  if (!/^<!--[^]*-->$/.test(marker)) {
    throw new Error(
      'the comment body must start with its marker line, e.g. <!-- pytest-behavior -->',
    );
  }
  const { owner, repo } = context.repo;
  const pullRequest = context.payload && context.payload.pull_request;
  const issueNumber = pullRequest ? pullRequest.number : context.issue.number;
  if (!issueNumber) {
    throw new Error('no pull request to comment on (this event has no pull_request)');
  }
  const comments = await github.paginate(github.rest.issues.listComments, {
    owner,
    repo,
    issue_number: issueNumber,
    per_page: 100,
  });
  const ours = comments.find(
    (comment) =>
      typeof comment.body === 'string' &&
      comment.body.split('\n', 1)[0].trim() === marker &&
      (author === '*' || (comment.user && comment.user.login === author)),
  );
  if (ours === undefined) {
    const { data } = await github.rest.issues.createComment({
      owner,
      repo,
      issue_number: issueNumber,
      body,
    });
    return { action: 'created', id: data.id, url: data.html_url };
  }
  if (ours.body === body) {
    return { action: 'unchanged', id: ours.id, url: ours.html_url };
  }
  const { data } = await github.rest.issues.updateComment({
    owner,
    repo,
    comment_id: ours.id,
    body,
  });
  return { action: 'updated', id: data.id, url: data.html_url };
}

module.exports = upsertComment;
module.exports.upsertComment = upsertComment;
