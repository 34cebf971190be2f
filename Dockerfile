FROM python:3.11-slim
WORKDIR /srv/notify
ENV PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=5000
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
EXPOSE 5000
CMD ["python", "wsgi.py"]
