;;; diffgem.el --- diffgem-lsp for Emacs: eglot and lsp-mode  -*- lexical-binding: t; -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "27.1"))
;; Keywords: languages, tools, convenience
;; URL: https://github.com/diffgem/diffgem-lsp

;;; Commentary:

;; Registers the diffgem-lsp language server (code completions and "Rewrite selection" from a
;; diffusion model) with eglot and with lsp-mode.  Load this file, then use either client:
;;
;;   (require 'diffgem)
;;   (add-hook 'python-mode-hook #'eglot-ensure)      ; eglot: diffgem is the buffer's server
;;   ;; or
;;   (add-hook 'python-mode-hook #'lsp-deferred)      ; lsp-mode: diffgem runs beside pylsp etc.
;;
;; eglot manages one server per buffer, so for the modes in `diffgem-major-modes' diffgem takes the
;; place of the usual server; lsp-mode runs it as an add-on next to the usual one and, from lsp-mode
;; 9.0 (which has `lsp-inline-completion-mode'), shows its suggestions as ghost text.
;; Settings (`diffgem-settings') go to the server as initializationOptions.

;;; Code:

(require 'cl-lib)
(require 'subr-x)

;; `emacs -Q' skips package activation and drops site-lisp, so eglot/lsp-mode installed as packages
;; (from ELPA, or Debian's elpa-eglot / elpa-lsp-mode in /usr/share/emacs/site-lisp/elpa) are not on
;; `load-path' and `eglot-ensure' is void (Emacs 29+ has eglot built in).  Activate the installed
;; packages then, as Emacs does before init.el (`package-activate-all', Emacs 27+).
(unless (or (locate-library "eglot") (locate-library "lsp-mode"))
  (require 'package)
  (let ((system (expand-file-name "../../site-lisp/elpa" data-directory)))
    (when (file-directory-p system)
      (add-to-list 'package-directory-list system t)))
  (when (fboundp 'package-activate-all)
    (package-activate-all)))

(defgroup diffgem nil
  "Code completions from a diffusion model (diffgem-lsp)."
  :group 'tools
  :prefix "diffgem-")

(defcustom diffgem-server-path nil
  "Path of the diffgem-lsp executable.
When nil, use .venv/bin/diffgem-lsp in a directory above the
current file, else diffgem-lsp on `exec-path'."
  :type '(choice (const :tag "Find it" nil) file))

(defcustom diffgem-server-args nil
  "Extra arguments for diffgem-lsp, e.g. (\"--log-file\" \"/tmp/diffgem.log\")."
  :type '(repeat string))

(defcustom diffgem-settings nil
  "Server settings: a plist of the server's camelCase keys.
They are sent as initializationOptions.  Example:
  (:invokedSteps 24 :automaticSuggestions t :debounceMs 60)
An unknown key or a bad value gets one message from the server
and the default."
  :type 'plist)

(defconst diffgem-language-ids
  '((python-mode . "python") (python-ts-mode . "python")
    (js-mode . "javascript") (js-ts-mode . "javascript") (js2-mode . "javascript")
    (js-jsx-mode . "javascriptreact") (rjsx-mode . "javascriptreact")
    (typescript-mode . "typescript") (typescript-ts-mode . "typescript")
    (tsx-ts-mode . "typescriptreact")
    (go-mode . "go") (go-ts-mode . "go")
    (rust-mode . "rust") (rust-ts-mode . "rust") (rustic-mode . "rust"))
  "Major modes diffgem serves, each with the LSP language id it needs.")

(defcustom diffgem-major-modes (mapcar #'car diffgem-language-ids)
  "Major modes for which eglot starts diffgem-lsp."
  :type '(repeat symbol))

(defvar eglot-server-programs)

(defvar diffgem-status nil
  "Last worker state from the server's diffgem/status notification.
A plist (:state :message :model).")

;;; Finding the server

(defun diffgem-server-command ()
  "The command line that starts diffgem-lsp.
Signal a `user-error' saying why when there is none."
  (let ((path (cond
               (diffgem-server-path (expand-file-name diffgem-server-path))
               ((when-let ((root (locate-dominating-file
                                  default-directory ".venv/bin/diffgem-lsp")))
                  (expand-file-name ".venv/bin/diffgem-lsp" root)))
               (t (executable-find "diffgem-lsp")))))
    (unless (and path (file-executable-p path))
      (user-error "diffgem: server %s not found or not executable; set `diffgem-server-path' or install diffgem-lsp"
                  (or path "diffgem-lsp")))
    (cons path diffgem-server-args)))

(defun diffgem-server-problem ()
  "Why diffgem-lsp cannot start, as one sentence; nil when it can."
  (condition-case err
      (progn (diffgem-server-command) nil)
    (user-error (error-message-string err))))

(defvar diffgem--reported-problem nil
  "The server problem already shown, so that each buffer does not repeat it.")

(defun diffgem-eglot-ensure ()
  "Start eglot with diffgem in this buffer, like `eglot-ensure'.
When the server cannot be found, say so once in the echo area
instead: `eglot-ensure' would fail later inside `post-command-hook',
where Emacs prints the error wrapped in the hook's byte-code."
  (let ((problem (diffgem-server-problem)))
    (cond
     ((null problem) (eglot-ensure))
     ((not (equal problem diffgem--reported-problem))
      (setq diffgem--reported-problem problem)
      (message "%s" problem)))))

(defun diffgem-lsp-deferred ()
  "Start lsp-mode in this buffer, like `lsp-deferred'.
When diffgem-lsp cannot be found, also say so once: lsp-mode would
start the other servers and leave diffgem out silently."
  (let ((problem (diffgem-server-problem)))
    (when (and problem (not (equal problem diffgem--reported-problem)))
      (setq diffgem--reported-problem problem)
      (message "%s" problem))
    (lsp-deferred)))

(defun diffgem--initialization-options ()
  (or diffgem-settings (make-hash-table)))

;;; Status (both clients)

(defun diffgem--set-status (state message model &optional instructions)
  "Keep the server's STATE, MESSAGE and MODEL; INSTRUCTIONS is t when the
model follows instructions (\"Rewrite selection…\", a chat checkpoint)."
  (setq diffgem-status (list :state state :message message :model model
                             :instructions (eq instructions t)))
  (when (equal state "error")
    (display-warning 'diffgem (format "worker error: %s" message) :error))
  (force-mode-line-update t))

(defun diffgem-mode-line ()
  "A short mode-line string, e.g. \"diffgem:ready\"."
  (if diffgem-status (format " diffgem:%s" (plist-get diffgem-status :state)) ""))

(defvar diffgem--mode-line-entry '(:eval (diffgem-mode-line)))
(unless (member diffgem--mode-line-entry global-mode-string)
  (setq global-mode-string (append global-mode-string (list diffgem--mode-line-entry))))

;;; eglot

(defun diffgem--eglot-contact (&optional _interactive)
  "Eglot contact: the server command and `diffgem-settings'."
  (append (diffgem-server-command)
          (list :initializationOptions (lambda (_server) (diffgem--initialization-options)))))

(defun diffgem--eglot-modes ()
  (mapcar (lambda (mode)
            (list mode :language-id (or (alist-get mode diffgem-language-ids) "python")))
          diffgem-major-modes))

(with-eval-after-load 'eglot
  (add-to-list 'eglot-server-programs (cons (diffgem--eglot-modes) #'diffgem--eglot-contact))
  (cl-defmethod eglot-handle-notification
    (_server (_method (eql diffgem/status)) &key state message model instructions &allow-other-keys)
    "Worker state from diffgem-lsp."
    (diffgem--set-status state message model instructions)))

;;; lsp-mode

(declare-function lsp-register-client "lsp-mode")
(declare-function make-lsp-client "lsp-mode")
(declare-function lsp-stdio-connection "lsp-mode")
(declare-function lsp-activate-on "lsp-mode")
(declare-function lsp-workspaces "lsp-mode")
(declare-function lsp--workspace-client "lsp-mode")
(declare-function lsp--client-server-id "lsp-mode")
(defvar lsp-language-id-configuration)

(defun diffgem--lsp-status (_workspace params)
  (diffgem--set-status (gethash "state" params) (gethash "message" params) (gethash "model" params)
                       (gethash "instructions" params)))

(defun diffgem--lsp-maybe-inline ()
  "Turn on lsp-mode's ghost text when diffgem serves the buffer.
Only lsp-mode 9.0 and newer have `lsp-inline-completion-mode'."
  (when (and (fboundp 'lsp-inline-completion-mode)
             (cl-some (lambda (ws) (eq (lsp--client-server-id (lsp--workspace-client ws)) 'diffgem))
                      (lsp-workspaces)))
    (lsp-inline-completion-mode 1)))

(with-eval-after-load 'lsp-mode
  (dolist (entry diffgem-language-ids)
    (unless (assq (car entry) lsp-language-id-configuration)
      (add-to-list 'lsp-language-id-configuration entry t)))
  (lsp-register-client
   (make-lsp-client
    :new-connection (lsp-stdio-connection #'diffgem-server-command)
    :activation-fn (lambda (_file mode) (memq mode diffgem-major-modes))
    :server-id 'diffgem
    :add-on? t
    :priority -2
    :initialization-options #'diffgem--initialization-options
    :notification-handlers (let ((table (make-hash-table :test #'equal)))
                             (puthash "diffgem/status" #'diffgem--lsp-status table)
                             table)))
  (add-hook 'lsp-after-open-hook #'diffgem--lsp-maybe-inline))

;;; Commands

(defconst diffgem-rewrite-fallback-reason "the model kept the selection as it is"
  "Shown when a resolved rewrite has neither an edit nor a reason.")

(defun diffgem-rewrite-outcome (resolved-disabled-reason)
  "The message for a rewrite without an edit, in the same words as every editor.
RESOLVED-DISABLED-REASON is the server's `disabled.reason'."
  (format "diffgem: %s" (or resolved-disabled-reason diffgem-rewrite-fallback-reason)))

(declare-function eglot-current-server "eglot")
(declare-function eglot-execute-command "eglot")
(declare-function eglot-ensure "eglot")
(declare-function lsp-deferred "lsp-mode")
(declare-function lsp-send-execute-command "lsp-mode")

(defun diffgem--execute (command)
  (cond
   ((and (fboundp 'eglot-current-server) (eglot-current-server))
    (eglot-execute-command (eglot-current-server) command []))
   ((bound-and-true-p lsp-mode) (lsp-send-execute-command (symbol-name command) []))
   (t (user-error "diffgem: no language server in this buffer"))))

(defun diffgem-status ()
  "Show the worker state and model."
  (interactive)
  (let ((status (diffgem--execute 'diffgem.status)))
    (message "diffgem: %s, model %s"
             (or (and (listp status) (plist-get status :state)) (plist-get diffgem-status :state) "?")
             (or (and (listp status) (plist-get status :model)) (plist-get diffgem-status :model) "?"))))

(defun diffgem-restart-worker ()
  "Restart the model worker (workspace/executeCommand diffgem.restartWorker)."
  (interactive)
  (message "diffgem: restarting the worker...")
  (diffgem--execute 'diffgem.restartWorker)
  (message "diffgem: worker restarted"))

(declare-function eglot--TextDocumentIdentifier "eglot")
(declare-function eglot--pos-to-lsp-position "eglot")
(declare-function eglot--apply-workspace-edit "eglot")
(declare-function jsonrpc-async-request "jsonrpc")
(declare-function lsp-request-async "lsp-mode")
(declare-function lsp--text-document-identifier "lsp-mode")
(declare-function lsp--region-to-range "lsp-mode")
(declare-function lsp--apply-workspace-edit "lsp-mode")

(defun diffgem--rewrite-eglot (beg end)
  "List \"Rewrite selection\" on BEG..END, resolve it and apply its edit (eglot).
eglot 1.9 has no codeAction/resolve: run as a code action it would get
the server's apply command.  Resolving here gives the server's edit or
its reason for keeping the text, in the same words as other editors."
  (let ((server (eglot-current-server))
        (buffer (current-buffer)))
    (jsonrpc-async-request
     server :textDocument/codeAction
     (list :textDocument (eglot--TextDocumentIdentifier)
           :range (list :start (eglot--pos-to-lsp-position beg)
                        :end (eglot--pos-to-lsp-position end))
           :context (list :diagnostics [] :only ["refactor.rewrite"]))
     :success-fn
     (lambda (actions)
       (let ((action (cl-find "Rewrite selection" actions
                              :key (lambda (a) (plist-get a :title)) :test #'equal)))
         (if (not action)
             (message "diffgem: nothing to rewrite here")
           (message "diffgem: rewriting...")
           (jsonrpc-async-request
            server :codeAction/resolve action
            :success-fn
            (lambda (resolved)
              (let ((edit (plist-get resolved :edit)))
                (if edit
                    (with-current-buffer buffer (eglot--apply-workspace-edit edit))
                  (message "%s" (diffgem-rewrite-outcome
                                 (plist-get (plist-get resolved :disabled) :reason))))))
            :error-fn
            (lambda (err)
              (message "diffgem: rewrite failed: %s" (plist-get err :message)))
            :timeout-fn #'ignore
            :timeout 300))))
     :error-fn (lambda (err) (message "diffgem: rewrite failed: %s" (plist-get err :message))))))

(defun diffgem--rewrite-lsp-mode (beg end)
  "The same as `diffgem--rewrite-eglot' through lsp-mode.
lsp-mode 8.0 resolves the action but shows nothing for a resolved
action without an edit."
  (let ((buffer (current-buffer)))
    (lsp-request-async
     "textDocument/codeAction"
     (list :textDocument (lsp--text-document-identifier)
           :range (lsp--region-to-range beg end)
           :context (list :diagnostics [] :only ["refactor.rewrite"]))
     (lambda (actions)
       (let ((action (cl-find "Rewrite selection" (append actions nil)
                              :key (lambda (a) (gethash "title" a)) :test #'equal)))
         (if (not action)
             (message "diffgem: nothing to rewrite here")
           (message "diffgem: rewriting...")
           (with-current-buffer buffer
             (lsp-request-async
              "codeAction/resolve" action
              (lambda (resolved)
                (let ((edit (gethash "edit" resolved)))
                  (if edit
                      (with-current-buffer buffer (lsp--apply-workspace-edit edit))
                    (let ((disabled (gethash "disabled" resolved)))
                      (message "%s" (diffgem-rewrite-outcome
                                     (and disabled (gethash "reason" disabled))))))))
              :error-handler
              (lambda (err) (message "diffgem: rewrite failed: %s" (gethash "message" err)))
              :mode 'detached)))))
     :error-handler
     (lambda (err) (message "diffgem: rewrite failed: %s" (gethash "message" err)))
     :mode 'detached)))

(defun diffgem-rewrite-region (beg end)
  "Run \"Rewrite selection\" on the region BEG..END and apply the model's edit.
When the model keeps the text (or its rewrite is dropped), the echo
area says which, with the same words as the other editors."
  (interactive "r")
  (cond
   ((and (fboundp 'eglot-current-server) (eglot-current-server))
    (diffgem--rewrite-eglot beg end))
   ((bound-and-true-p lsp-mode) (diffgem--rewrite-lsp-mode beg end))
   (t (user-error "diffgem: no language server in this buffer"))))

(defconst diffgem-instruction-command "diffgem.rewriteWithInstruction"
  "The server's \"Rewrite selection…\" command: {uri, range, instruction}.")

(declare-function lsp--buffer-uri "lsp-mode")

(defun diffgem-rewrite-with-instruction (beg end instruction)
  "Rewrite the region BEG..END as INSTRUCTION says (\"Rewrite selection…\").
INSTRUCTION is read in the minibuffer.  Only a model that follows
instructions (a chat checkpoint, e.g. DiffusionGemma-it on vLLM) takes
one: with the embedded model this says so instead of asking.  The server
applies the edit (workspace/applyEdit; eglot asks first when
`eglot-confirm-server-initiated-edits' says so) or says why it did not."
  (interactive
   (progn
     (unless (use-region-p) (user-error "diffgem: select the code to rewrite first"))
     (when (and diffgem-status (not (plist-get diffgem-status :instructions)))
       (user-error "diffgem: this model does not take instructions: use Rewrite selection"))
     (list (region-beginning) (region-end) (read-string "diffgem instruction: "))))
  (when (string-empty-p (string-trim instruction))
    (user-error "diffgem: Rewrite selection… needs an instruction"))
  (message "diffgem: rewriting...")
  (cond
   ((and (fboundp 'eglot-current-server) (eglot-current-server))
    (let ((target (append (eglot--TextDocumentIdentifier)
                          (list :range (list :start (eglot--pos-to-lsp-position beg)
                                             :end (eglot--pos-to-lsp-position end))
                                :instruction instruction))))
      (jsonrpc-async-request
       (eglot-current-server) :workspace/executeCommand
       (list :command diffgem-instruction-command :arguments (vector target))
       :success-fn #'ignore  ; the edit, or the server's message, arrives on its own
       :error-fn (lambda (err) (message "diffgem: rewrite failed: %s" (plist-get err :message)))
       :timeout-fn #'ignore
       :timeout 300)))
   ((bound-and-true-p lsp-mode)
    (lsp-request-async
     "workspace/executeCommand"
     (list :command diffgem-instruction-command
           :arguments (vector (list :uri (lsp--buffer-uri)
                                    :range (lsp--region-to-range beg end)
                                    :instruction instruction)))
     #'ignore
     :error-handler (lambda (err) (message "diffgem: rewrite failed: %s" (gethash "message" err)))
     :mode 'detached))
   (t (user-error "diffgem: no language server in this buffer"))))

(provide 'diffgem)
;;; diffgem.el ends here
