// Chat webview: renders messages from the extension (see src/common/chatMessages.ts) as plain
// text (never HTML) and sends prompts back. Runs inside VS Code's webview sandbox.
(function () {
  'use strict';
  // eslint-disable-next-line no-undef
  const vscode = acquireVsCodeApi();
  const log = document.getElementById('log');
  const form = document.getElementById('form');
  const prompt = document.getElementById('prompt');
  const send = document.getElementById('send');
  const cancel = document.getElementById('cancel');
  const answers = new Map();

  function scroll() {
    log.scrollTop = log.scrollHeight;
  }

  function bubble(kind, title) {
    const item = document.createElement('section');
    item.className = `message ${kind}`;
    if (title) {
      const heading = document.createElement('h2');
      heading.textContent = title;
      item.appendChild(heading);
    }
    const body = document.createElement('div');
    body.className = 'body';
    item.appendChild(body);
    log.appendChild(item);
    scroll();
    return { item, body };
  }

  function setBusy(busy) {
    send.disabled = busy;
    cancel.disabled = !busy;
  }

  window.addEventListener('message', (event) => {
    const message = event.data;
    switch (message.type) {
      case 'user':
        bubble('user').body.textContent = message.text;
        break;
      case 'start': {
        const answer = bubble('assistant streaming', message.title);
        answers.set(message.id, answer);
        break;
      }
      case 'delta': {
        const answer = answers.get(message.id);
        if (answer) {
          answer.body.textContent += message.text;
          scroll();
        }
        break;
      }
      case 'done': {
        const answer = answers.get(message.id) || bubble('assistant', undefined);
        answer.body.textContent = message.text;
        answer.item.classList.remove('streaming');
        if (message.detail) {
          const detail = document.createElement('footer');
          detail.textContent = message.detail;
          answer.item.appendChild(detail);
        }
        answers.delete(message.id);
        scroll();
        break;
      }
      case 'error': {
        const answer = answers.get(message.id) || bubble('assistant', undefined);
        answer.item.classList.remove('streaming');
        answer.item.classList.add('error');
        const note = document.createElement('footer');
        note.textContent = message.message;
        answer.item.appendChild(note);
        answers.delete(message.id);
        break;
      }
      case 'busy':
        setBusy(message.busy);
        break;
      case 'clear':
        log.textContent = '';
        answers.clear();
        break;
      default:
        break;
    }
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (text !== '' && !send.disabled) {
      vscode.postMessage({ type: 'send', prompt: text });
      prompt.value = '';
    }
  });

  prompt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  cancel.addEventListener('click', () => {
    vscode.postMessage({ type: 'cancel' });
  });

  vscode.postMessage({ type: 'ready' });
})();
