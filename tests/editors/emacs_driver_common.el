;;; emacs_driver_common.el --- what the Emacs drivers share: JSON results, messages, waiting, rewrites  -*- lexical-binding: t; -*-
;; Loaded first by emacs_driver.el (eglot), emacs_snippet_driver.el (the README snippets under -Q) and
;; emacs_lspmode_driver.el; requires nothing of diffgem, eglot or lsp-mode (the snippet driver must
;; load those through the user's snippet). DIFFGEM_EMACS_OUT: the JSON path; DIFFGEM_REWRITES: the
;; rewrite samples.
(require 'json)
(require 'cl-lib)

(defvar driver-out (make-hash-table :test #'equal))
(defvar driver-messages nil)
(defun driver-put (key value) (puthash key value driver-out))
(advice-add 'message :after
            (lambda (fmt &rest args)
              (when fmt (push (apply #'format-message fmt args) driver-messages))))

(defun driver-write ()
  "Write the results (and every message) to DIFFGEM_EMACS_OUT."
  (driver-put "messages" (vconcat (reverse driver-messages)))
  (with-temp-file (getenv "DIFFGEM_EMACS_OUT")
    (insert (json-encode driver-out))))

(defun driver-wait (pred seconds)
  "Let processes run until PRED holds or SECONDS pass (a hang guard, not a timing check)."
  (let ((deadline (+ (float-time) seconds)))
    (while (and (not (funcall pred)) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (funcall pred)))

(defun driver-rewrites ()
  "DIFFGEM_REWRITES: a JSON list of {text, start: [line, col], end: [line, col]} (0-based, ASCII)."
  (append (json-parse-string (getenv "DIFFGEM_REWRITES") :object-type 'plist) nil))

(defun driver-point (line-col)
  (goto-char (point-min))
  (forward-line (aref line-col 0))
  (forward-char (aref line-col 1))
  (point))

(defun driver-rewrite (sample &optional listed)
  "Put SAMPLE's text (plist :text :start :end) in the buffer and run `diffgem-rewrite-region' on its
selection until the edit lands or the outcome is said; what happened, as an alist. LISTED, when
given, is called with the region first and its value recorded as \"code_actions\"."
  (erase-buffer)
  (insert (plist-get sample :text))
  (let* ((beg (driver-point (plist-get sample :start)))
         (end (driver-point (plist-get sample :end)))
         (tick (buffer-chars-modified-tick))
         (before (buffer-string))
         (actions (and listed (funcall listed beg end)))
         (seen (length driver-messages)))
    (diffgem-rewrite-region beg end)
    ;; "diffgem: rewriting..." comes first; wait for the edit or the outcome.
    (driver-wait (lambda () (or (/= tick (buffer-chars-modified-tick))
                                (cl-some (lambda (m) (or (string-prefix-p "diffgem: the model" m)
                                                         (string-prefix-p "diffgem: rewrite failed" m)))
                                         (butlast driver-messages seen))))
                 120)
    (driver-wait (lambda () nil) 0.3)
    (append (list (cons "before" before))
            (and listed (list (cons "code_actions" actions)))
            (list (cons "after" (buffer-string))
                  (cons "messages" (vconcat (reverse (butlast driver-messages seen))))))))
