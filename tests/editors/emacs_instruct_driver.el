;;; emacs_instruct_driver.el --- "Rewrite selection…" through eglot + diffgem.el in `emacs --batch'  -*- lexical-binding: t; -*-
;; Environment: DIFFGEM_LSP (server), DIFFGEM_SETTINGS (JSON), DIFFGEM_EMACS_OUT (JSON path),
;; DIFFGEM_INSTRUCT (JSON {start: [line, col], end: [line, col]}, 0-based). The region is selected and
;; `diffgem-rewrite-with-instruction' is called as M-x would: its minibuffer prompt reads the instruction
;; (from standard input in batch mode, where tests/editors/test_emacs.py writes it).
(load (expand-file-name "emacs_driver_common.el" (file-name-directory load-file-name)) nil t)
(require 'eglot)
(require 'diffgem)

(setq diffgem-server-path (getenv "DIFFGEM_LSP")
      diffgem-settings (json-parse-string (getenv "DIFFGEM_SETTINGS") :object-type 'plist)
      eglot-connect-timeout 60
      eglot-sync-connect t
      eglot-confirm-server-initiated-edits nil ; the server applies the rewrite (workspace/applyEdit)
      jsonrpc-default-request-timeout 90)

(condition-case err
    (progn
      (find-file (car command-line-args-left))
      (setq command-line-args-left nil)
      (let* ((spec (json-parse-string (getenv "DIFFGEM_INSTRUCT") :object-type 'plist))
             (server (apply #'eglot--connect (eglot--guess-contact)))
             (before (buffer-string)))
        (driver-wait (lambda () (equal (plist-get diffgem-status :state) "ready")) 60)
        (driver-put "instructions" (plist-get diffgem-status :instructions))
        (transient-mark-mode 1)
        (let ((end (driver-point (plist-get spec :end))))
          (driver-point (plist-get spec :start))
          (push-mark end t t))
        (call-interactively #'diffgem-rewrite-with-instruction)
        (driver-wait (lambda () (not (equal (buffer-string) before))) 120)
        (driver-put "before" before)
        (driver-put "after" (buffer-string))
        (eglot-shutdown server nil 15)))
  (error (driver-put "error" (error-message-string err))))
(driver-write)
(kill-emacs 0)
