/*
 * The blinded pairwise study page. Reads the study from `window.DRO_STUDY` (set by study-data.js:
 * a script file rather than study.json, because browsers refuse fetch() from file:// pages).
 *
 * The order of the pairs and the side of each image are drawn from a PRNG seeded by the study id
 * and the participant id, so one participant always sees the same order and two participants see
 * different ones. Prompts are user text and only ever reach the page through textContent.
 */
/* global window, document, Blob, URL */
(function () {
  'use strict';

  var RESULTS_FORMAT = 'dro-study-results';
  var PARTICIPANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/;

  function byId(id) {
    return document.getElementById(id);
  }

  function show(id) {
    ['start', 'pair', 'done', 'broken'].forEach(function (s) {
      byId(s).hidden = s !== id;
    });
  }

  // cyrb53-style string hash -> 32-bit seed, then mulberry32: small, and identical in every browser.
  function hashString(text) {
    var h1 = 0xdeadbeef;
    var h2 = 0x41c6ce57;
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    return h1 >>> 0;
  }

  function mulberry32(seed) {
    var a = seed >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) | 0;
      var t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /** The participant's screens: every pair once, in a shuffled order, each with its sides drawn. */
  function planFor(study, participantId) {
    var random = mulberry32(hashString(study.studyId + '\n' + participantId));
    var order = study.pairs.slice();
    for (var i = order.length - 1; i > 0; i--) {
      var j = Math.floor(random() * (i + 1));
      var tmp = order[i];
      order[i] = order[j];
      order[j] = tmp;
    }
    return order.map(function (pair) {
      var swap = random() < 0.5;
      return {
        pair: pair,
        left: swap ? pair.images[1] : pair.images[0],
        right: swap ? pair.images[0] : pair.images[1],
      };
    });
  }

  function fileNameFor(participantId) {
    return 'study-results-' + participantId.replace(/[^A-Za-z0-9._-]+/g, '_') + '.json';
  }

  function start(study) {
    document.title = study.title;
    byId('title').textContent = study.title;
    byId('intro').textContent =
      'You will compare ' +
      study.pairs.length +
      ' pairs of images, about ' +
      Math.max(1, Math.round(study.pairs.length / 6)) +
      ' min.';
    byId('question-rule').textContent = study.question;
    byId('question').textContent = study.question;

    var state = null;

    byId('start-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var id = byId('participant').value.trim();
      var error = byId('participant-error');
      if (!PARTICIPANT_PATTERN.test(id)) {
        error.textContent =
          'Use 1 to 64 letters, digits, spaces or . _ @ -, starting with a letter or digit.';
        error.hidden = false;
        return;
      }
      error.hidden = true;
      state = {
        participantId: id,
        startedAt: new Date().toISOString(),
        plan: planFor(study, id),
        index: 0,
        answers: [],
        shownAt: 0,
        busy: false,
      };
      show('pair');
      render();
    });

    function render() {
      var step = state.plan[state.index];
      var n = state.plan.length;
      byId('progress').textContent = 'Pair ' + (state.index + 1) + ' of ' + n;
      byId('progress-bar').style.width = (100 * state.index) / n + '%';
      byId('prompt').textContent = step.pair.prompt;
      byId('image-left').src = step.left;
      byId('image-right').src = step.right;
      byId('choose-left').classList.remove('picked');
      byId('choose-right').classList.remove('picked');
      state.shownAt = Date.now();
      state.busy = false;
    }

    function choose(side) {
      if (!state || state.busy || state.index >= state.plan.length) return;
      state.busy = true;
      var step = state.plan[state.index];
      state.answers.push({
        pairId: step.pair.id,
        choice: side === 'left' ? step.left : step.right,
        left: step.left,
        right: step.right,
        position: state.index + 1,
        ms: Date.now() - state.shownAt,
      });
      byId(side === 'left' ? 'choose-left' : 'choose-right').classList.add('picked');
      // A short pause shows which image was taken and absorbs an accidental double press.
      window.setTimeout(function () {
        state.index++;
        if (state.index < state.plan.length) render();
        else finish();
      }, 150);
    }

    function finish() {
      state.finishedAt = new Date().toISOString();
      byId('done-summary').textContent = 'You answered all ' + state.answers.length + ' pairs.';
      byId('download-name').textContent = fileNameFor(state.participantId);
      show('done');
      byId('download').focus();
    }

    byId('choose-left').addEventListener('click', function () {
      choose('left');
    });
    byId('choose-right').addEventListener('click', function () {
      choose('right');
    });
    document.addEventListener('keydown', function (event) {
      if (byId('pair').hidden || event.repeat || event.altKey || event.ctrlKey || event.metaKey) return;
      if (event.key === 'ArrowLeft' || event.key === '1') choose('left');
      else if (event.key === 'ArrowRight' || event.key === '2') choose('right');
      else return;
      event.preventDefault();
    });

    byId('download').addEventListener('click', function () {
      var results = {
        format: RESULTS_FORMAT,
        version: 1,
        studyId: study.studyId,
        participantId: state.participantId,
        startedAt: state.startedAt,
        finishedAt: state.finishedAt,
        answers: state.answers,
      };
      var blob = new Blob([JSON.stringify(results, null, 2) + '\n'], { type: 'application/json' });
      var url = URL.createObjectURL(blob);
      var link = document.createElement('a');
      link.href = url;
      link.download = fileNameFor(state.participantId);
      document.body.appendChild(link);
      link.click();
      link.remove();
      window.setTimeout(function () {
        URL.revokeObjectURL(url);
      }, 10000);
    });

    show('start');
    byId('participant').focus();
  }

  document.addEventListener('DOMContentLoaded', function () {
    var study = window.DRO_STUDY;
    if (!study || !Array.isArray(study.pairs) || study.pairs.length === 0) {
      byId('broken-reason').textContent = 'study-data.js is missing or holds no pairs.';
      show('broken');
      return;
    }
    start(study);
  });
})();
