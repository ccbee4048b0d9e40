;;; swarm-eglot-test.el --- drive eglot (batch) against swarm-lsp -*- lexical-binding: t -*-

;; Run by tests/editors/test_emacs_eglot.py:
;;   emacs --batch -l swarm-eglot-test.el
;; Environment: SWARM_TEST_PROJECT (a project with pyproject.toml and no .git),
;; SWARM_TEST_SERVER (JSON list: the server command), SWARM_TEST_OUT (JSON results),
;; SWARM_TEST_CACHE (the server's cache folder).  Every step adds its findings to the results
;; file as it goes, so a step that hangs still leaves the earlier ones for the test to show.
;; eglot's request timeout stays at its default (`jsonrpc-default-request-timeout', 10 s).

(package-initialize)
(require 'cl-lib)
(require 'json)
(require 'eglot)
(require 'imenu)
(require 'xref)
(require 'flymake)
(require 'python)

(defvar st-project (file-name-as-directory (getenv "SWARM_TEST_PROJECT")))
(defvar st-out (getenv "SWARM_TEST_OUT"))
(defvar st-cache (getenv "SWARM_TEST_CACHE"))
(defvar st-results nil "Alist of findings, written as JSON after every step.")
(defvar st-messages nil "Every message Emacs showed (eglot's showMessage lands here).")
(defvar st-status nil "The last swarm/status params.")
(defvar st-task-results (make-hash-table :test 'equal) "swarm/result params by task id.")
(defvar st-questions nil "Prompts of the server's questions (showMessageRequest).")

(defun st-put (key value)
  (setq st-results (cons (cons key value) (assq-delete-all key st-results)))
  (let ((json-encoding-pretty-print nil))
    (with-temp-file st-out
      (insert (json-encode (append st-results
                                   `((messages . ,(vconcat (reverse st-messages))))))))))

(defun st-wait (predicate timeout)
  "Handle server traffic until PREDICATE is non-nil or TIMEOUT seconds pass; its value."
  (let ((deadline (+ (float-time) timeout)) value)
    (while (and (not (setq value (funcall predicate))) (< (float-time) deadline))
      (accept-process-output nil 0.1))
    value))

(defmacro st-step (name &rest body)
  "Run BODY; record an error as NAME-error instead of stopping the run."
  (declare (indent 1))
  `(condition-case err
       (progn ,@body)
     (error (st-put (intern (format "%s-error" ,name)) (format "%S" err)))))

;; What the user sees and answers --------------------------------------------------------------
(advice-add 'message :filter-return
            (lambda (text) (when (stringp text) (push text st-messages)) text))
(advice-add 'completing-read :around
            (lambda (orig prompt collection &rest rest)
              (let ((titles (and (listp collection)
                                 (mapcar (lambda (c) (if (consp c) (car c) c)) collection))))
                (cond ((member "Apply" titles) (push prompt st-questions) "Apply")
                      ((member "Wait" titles) (push prompt st-questions) "Wait")
                      (t (apply orig prompt collection rest))))))
(setq eglot-confirm-server-initiated-edits nil
      eglot-autoshutdown nil
      eglot-sync-connect 10
      eglot-server-programs
      `((python-mode . ,(append (json-read-from-string (getenv "SWARM_TEST_SERVER")) nil))))

(cl-defmethod eglot-handle-notification (_server (_method (eql swarm/status)) &rest params)
  (setq st-status params))
(cl-defmethod eglot-handle-notification (_server (_method (eql swarm/result)) &rest params)
  (puthash (plist-get params :taskId) params st-task-results))

(defvar st-published nil "(file . count) of every publishDiagnostics, newest first.")
(advice-add 'eglot-handle-notification :before
            (lambda (_server method &rest params)
              (when (eq method 'textDocument/publishDiagnostics)
                (push (format "%s:%d" (file-name-nondirectory (plist-get params :uri))
                              (length (plist-get params :diagnostics)))
                      st-published))))

(defun st-open (relative)
  "Visit RELATIVE in the project with eglot managing it; the buffer."
  (let ((buffer (find-file-noselect (expand-file-name relative st-project))))
    (with-current-buffer buffer
      (unless (eglot-current-server)
        (apply #'eglot--connect (eglot--guess-contact)))
      (st-wait (lambda () (and (eglot-current-server) eglot--managed-mode)) 30))
    buffer))

(defun st-line-region (buffer first last)
  "Region of 1-based lines FIRST..LAST (to the end of LAST) in BUFFER."
  (with-current-buffer buffer
    (save-excursion
      (goto-char (point-min)) (forward-line (1- first))
      (let ((beg (point)))
        (forward-line (- last first)) (end-of-line)
        (cons beg (point))))))

(defun st-coordinators ()
  "Local coordinators (the swarm of one's node) started under this test's cache folder."
  (cl-count-if
   (lambda (pid)
     (let ((args (cdr (assq 'args (process-attributes pid)))))
       (and args (string-match-p "swarm_lsp.cli \\(?:coordinator\\|node\\) " args)
            (string-match-p (regexp-quote st-cache) args))))
   (list-system-processes)))

(defun st-flymake (buffer needle)
  "Flymake diagnostics in BUFFER whose text contains NEEDLE: list of (line . text)."
  (with-current-buffer buffer
    (flymake-start)  ; batch Emacs shows no window, so flymake would defer its start forever
    (cl-loop for d in (flymake-diagnostics)
             when (string-match-p (regexp-quote needle) (flymake-diagnostic-text d))
             collect (cons (line-number-at-pos (flymake-diagnostic-beg d))
                           (flymake-diagnostic-text d)))))

(defun st-run-action (server action)
  "Execute a code ACTION's command the way eglot does; (elapsed result error)."
  (let* ((command (plist-get action :command))
         (start (float-time)) result error)
    (condition-case err
        (setq result (eglot-execute-command server (intern (plist-get command :command))
                                            (plist-get command :arguments)))
      (error (setq error (format "%S" err))))
    (list (- (float-time) start) result error)))

(defun st-finish (task-id timeout)
  "Wait for the swarm/result of TASK-ID; its params or nil."
  (and task-id (st-wait (lambda () (gethash task-id st-task-results)) timeout)))

;; The run ---------------------------------------------------------------------------------
(let* ((geometry (st-open "shapes/geometry.py"))
       (server (with-current-buffer geometry (eglot-current-server)))
       tests-buffer tests-server)
  (st-put 'connected (and server t))
  (st-put 'ready (and (st-wait (lambda () (and st-status
                                                (equal (plist-get st-status :state) "ready")
                                                (>= (length (plist-get st-status :machines)) 3)))
                               240)
                      t))
  (st-put 'root-status-machines (length (plist-get st-status :machines)))

  (st-step 'imenu
    (with-current-buffer geometry
      (let ((names nil))
        (cl-labels ((walk (items)
                      (dolist (item items)
                        (push (car item) names)
                        (when (imenu--subalist-p item) (walk (cdr item))))))
          (walk (funcall imenu-create-index-function)))
        (st-put 'imenu (vconcat names)))))

  (st-step 'completion
    (with-current-buffer geometry
      (goto-char (point-max))
      (let ((start (point)) (began (float-time)))
        (insert "\n\ndef half_perimeter(rect: Rectangle) -> float:\n    return rect.")
        (let* ((capf (eglot-completion-at-point))
               (items (and capf (all-completions "" (nth 2 capf)))))
          (st-put 'completion-seconds (- (float-time) began))
          (st-put 'completion (vconcat (seq-take items 20))))
        (delete-region start (point-max)))))

  ;; A second folder without a VCS root: eglot starts a second server for it.
  (st-step 'second-server
    (setq tests-buffer (st-open "tests/test_geometry.py"))
    (setq tests-server (with-current-buffer tests-buffer (eglot-current-server)))
    (st-put 'servers (length (delete-dups (list server tests-server))))
    (st-wait (lambda () nil) 3)  ; let the second server attach to (or start) a swarm
    (st-put 'coordinators (st-coordinators)))

  (st-step 'xref
    (with-current-buffer tests-buffer
      (goto-char (point-min))
      (search-forward "import Rectangle")
      (backward-char 2)
      (let* ((defs (xref-backend-definitions 'eglot (xref-backend-identifier-at-point 'eglot))))
        (st-put 'xref (vconcat (mapcar (lambda (x)
                                         (let ((loc (xref-item-location x)))
                                           (format "%s:%s" (xref-location-group loc)
                                                   (xref-location-line loc))))
                                       defs))))))

  (st-step 'diagnostics
    (with-current-buffer tests-buffer
      (set-buffer-modified-p t)  ; save-buffer skips an unmodified buffer
      (save-buffer))  ; didSave: a debounced test run
    (st-put 'flymake-test
            (vconcat (mapcar #'car (or (st-wait (lambda () (st-flymake tests-buffer "test_perimeter")) 180)
                                       nil))))
    (st-put 'published (vconcat (reverse st-published)))
    (st-put 'flymake-suspect
            (vconcat (mapcar #'car (st-wait (lambda () (st-flymake geometry "test_perimeter")) 30)))))

  (st-step 'chat
    (let* ((began (float-time))
           (answer (jsonrpc-request server :swarm/chat '(:prompt "Say hello in three words.")
                                    :timeout 120)))
      (st-put 'chat (plist-get answer :text))
      (st-put 'chat-seconds (- (float-time) began))))

  (st-step 'code-actions
    (let* ((region (st-line-region geometry 22 24))
           (all (with-current-buffer geometry
                  (eglot-code-actions (car region) (cdr region) nil nil)))
           (rewrite (with-current-buffer geometry
                      (eglot-code-actions (car region) (cdr region) "refactor.rewrite" nil)))
           (runs nil))
      (st-put 'actions (vconcat (mapcar (lambda (a) (plist-get a :title)) all)))
      (st-put 'rewrite-actions (vconcat (mapcar (lambda (a) (plist-get a :title)) rewrite)))
      (dolist (title '("Swarm: Run tests" "Swarm: Refactor…" "Swarm: Generate tests"
                       "Swarm: Explain" "Swarm: Review" "Swarm: Research this symbol"))
        (let ((action (cl-find title all :key (lambda (a) (plist-get a :title)) :test #'equal)))
          (if (null action)
              (push `((title . ,title) (error . "not offered")) runs)
            (with-current-buffer geometry
              (pcase-let* ((`(,elapsed ,answer ,error) (st-run-action server action))
                           (done (st-finish (plist-get answer :taskId) 240)))
                (push `((title . ,title) (seconds . ,elapsed) (error . ,error)
                        (started . ,(plist-get answer :status))
                        (ok . ,(if done (if (eq (plist-get done :ok) :json-false) :json-false t)
                                 "no result"))
                        (failure . ,(plist-get done :error)))
                      runs))))))
      (st-put 'runs (vconcat (nreverse runs)))
      (st-put 'refactored (with-current-buffer geometry
                            (and (string-match-p "2 \\* (self.width \\+ self.height)"
                                                 (buffer-string))
                                 t)))
      (st-put 'generated (with-current-buffer tests-buffer
                           (and (string-match-p "def test_area" (buffer-string)) t)))
      (st-put 'questions (vconcat st-questions))))

  (st-put 'coordinators-after-actions (st-coordinators))

  ;; Shut down while an action is in flight (the scripted model is slow for "SLOW").
  (st-step 'shutdown
    (let* ((region (st-line-region geometry 22 24))
           (answer (with-current-buffer geometry
                     (eglot-execute-command
                      server 'swarm.refactor
                      (vector (eglot--path-to-uri (buffer-file-name geometry))
                              (list :start (eglot--pos-to-lsp-position (car region))
                                    :end (eglot--pos-to-lsp-position (cdr region)))
                              "SLOW: make it clearer"))))
           (began (float-time))
           (errors nil))
      (st-put 'inflight-started (plist-get answer :status))
      (st-wait (lambda () nil) 1)
      (dolist (s (list tests-server server))
        (condition-case err
            (eglot-shutdown s nil nil t)
          (error (push (format "%S" err) errors))))
      (st-put 'shutdown-seconds (- (float-time) began))
      (st-put 'shutdown-errors (vconcat errors))
      (st-put 'server-errors
              (vconcat (cl-loop for s in (list tests-server server)
                                for events = (jsonrpc-events-buffer s)
                                when (buffer-live-p events)
                                append (with-current-buffer events
                                         (let (found)
                                           (goto-char (point-min))
                                           (while (re-search-forward "-32603.*$" nil t)
                                             (push (match-string 0) found))
                                           found)))))
      (st-put 'coordinators-after-shutdown
              (progn (st-wait (lambda () (zerop (st-coordinators))) 20) (st-coordinators))))))

(st-put 'done t)
(kill-emacs 0)

;;; swarm-eglot-test.el ends here
